//! The roles one Herald process can play: serve the API, ingest feeds, send alerts.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The HTTP API.
    Api,
    /// Polls publishers' feeds and clusters stories.
    Ingest,
    /// Fans breaking-story alerts out to devices.
    Notifier,
}

impl Role {
    /// Every role, the default for `herald serve`.
    pub const ALL: [Role; 3] = [Role::Api, Role::Ingest, Role::Notifier];

    fn name(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Ingest => "ingest",
            Self::Notifier => "notifier",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of roles a process runs, parsed from `api,ingest,notifier`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    /// All roles.
    pub fn all() -> Self {
        Self(Role::ALL.into_iter().collect())
    }

    /// Just these.
    pub fn only(roles: &[Role]) -> Self {
        Self(roles.iter().copied().collect())
    }

    /// True when `role` is in the set.
    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }
}

impl Default for Roles {
    fn default() -> Self {
        Self::all()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|r| r.name()).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Roles {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut roles = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let role = Role::ALL
                .into_iter()
                .find(|r| r.name() == part)
                .ok_or_else(|| format!("unknown role `{part}`; roles are api, ingest, notifier"))?;
            roles.insert(role);
        }
        if roles.is_empty() {
            return Err("name at least one role: api, ingest, notifier".into());
        }
        Ok(Self(roles))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_of_roles() {
        let roles: Roles = "api, notifier".parse().unwrap();
        assert!(roles.has(Role::Api) && roles.has(Role::Notifier) && !roles.has(Role::Ingest));
        assert_eq!(roles.to_string(), "api,notifier");
        assert!("api,bogus".parse::<Roles>().unwrap_err().contains("bogus"));
        assert!("".parse::<Roles>().is_err());
    }
}
