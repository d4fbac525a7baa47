//! Page cursors at the HTTP edge: the key and the article-list scope live in
//! `herald_auth::cursor` (the reader's pages use the same cursors); here a cursor that does not
//! check out becomes a 400, and a page read one item long becomes its next cursor.

use crate::ApiError;
use herald_auth::cursor::CursorError;

impl From<CursorError> for ApiError {
    fn from(err: CursorError) -> Self {
        ApiError::BadRequest(err.to_string())
    }
}

/// Cuts `items`, read with one more than `limit`, to `limit`; the cursor of the next page
/// (made from the last item kept) when there is one.
pub(crate) fn next_page<T>(
    items: &mut Vec<T>,
    limit: u64,
    cursor: impl FnOnce(&T) -> String,
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.len() <= limit {
        return None;
    }
    items.truncate(limit);
    items.last().map(cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_cuts_the_extra_item() {
        let mut items = vec![1, 2, 3];
        assert_eq!(
            next_page(&mut items, 2, |n| n.to_string()),
            Some("2".into())
        );
        assert_eq!(items, vec![1, 2]);
        assert_eq!(next_page(&mut items, 2, |n| n.to_string()), None);
    }

    #[test]
    fn a_foreign_cursor_is_a_bad_request() {
        let err = ApiError::from(CursorError::Foreign);
        assert!(matches!(err, ApiError::BadRequest(ref m) if m.contains("start again")));
    }
}
