// Herald's newsroom console: plain JavaScript, no build step, no library. Every call it makes
// is a documented /v1 route; every text it shows goes in as text (never as HTML).
(() => {
  "use strict";

  const body = document.body;
  const SITE = body.dataset.siteName || "Herald";
  const STORIES_POLL_MS = Number(body.dataset.storiesPollMs) || 3000;
  const PROGRESS_POLL_MS = Number(body.dataset.progressPollMs) || 500;
  const SOURCES_POLL_MS = 5000;
  const OPENS_POLL_MS = 5000;
  const $ = (id) => document.getElementById(id);

  // ---- DOM ---------------------------------------------------------------------------------

  /** An element with attributes (`on*` become listeners) and children (strings become text). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const number = (n) => Number(n || 0).toLocaleString("en");
  const percent = (x) => `${(x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0)} %`;

  function ago(iso) {
    if (!iso) return "never";
    const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
    const future = seconds < 0;
    const n = Math.abs(seconds);
    const text = n < 45 ? `${n} s` : n < 3600 ? `${Math.round(n / 60)} min` : n < 86400 ? `${Math.round(n / 3600)} h` : `${Math.round(n / 86400)} d`;
    return future ? `in ${text}` : `${text} ago`;
  }

  function when(iso) {
    if (!iso) return h("span", { text: "never" });
    return h("time", { datetime: iso, title: new Date(iso).toLocaleString() }, ago(iso));
  }

  function flash(message) {
    $("flash").textContent = message;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { $("flash").textContent = ""; }, 8000);
  }

  function showError(id, message) {
    const el = $(id);
    el.textContent = message || "";
    el.hidden = !message;
  }

  /** Marks a field invalid (with its message) or valid again. */
  function fieldError(inputId, message) {
    const input = $(inputId);
    if (input) {
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    showError(`${inputId}-error`, message);
  }

  // ---- session -----------------------------------------------------------------------------
  //
  // The access token lives only in this closure. The refresh token lives here too, and in
  // sessionStorage so that reloading this tab keeps the editor signed in: sessionStorage is
  // per tab and gone when the tab closes, unlike localStorage (never used here), which every
  // tab and every later visit can read. Herald's /v1 takes tokens in JSON bodies, not in
  // cookies, so an HttpOnly cookie is not an option without a route the API does not have.
  // The session renews itself shortly before the access token expires (refresh tokens rotate
  // on every use), and signing out revokes it on the server.

  const REFRESH_KEY = "herald.console.refresh";
  const session = { access: null, refresh: null, user: null, timer: null, renewing: null };

  class Problem extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
    }
  }

  async function problemOf(response) {
    try { return new Problem(response.status, await response.json()); } catch { return new Problem(response.status, null); }
  }

  function adopt(tokens) {
    session.access = tokens.access_token;
    session.refresh = tokens.refresh_token;
    session.user = tokens.user;
    try { sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token); } catch { /* private mode: memory only */ }
    clearTimeout(session.timer);
    const seconds = Math.max(10, Number(tokens.expires_in || 900) * 0.8);
    session.timer = setTimeout(() => { renew().catch(() => {}); }, seconds * 1000);
  }

  function forget() {
    clearTimeout(session.timer);
    session.access = session.refresh = session.user = null;
    try { sessionStorage.removeItem(REFRESH_KEY); } catch { /* nothing kept */ }
  }

  /** Trades the refresh token for a new pair, once at a time however many callers ask. */
  function renew() {
    if (!session.renewing) {
      session.renewing = (async () => {
        const refresh = session.refresh;
        if (!refresh) throw new Problem(401, { detail: "Not signed in" });
        const response = await fetch("/v1/auth/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: refresh }),
        });
        if (!response.ok) {
          forget();
          signedOut("Your session ended. Sign in again.");
          throw await problemOf(response);
        }
        adopt(await response.json());
      })().finally(() => { session.renewing = null; });
    }
    return session.renewing;
  }

  /** A call to /v1 with the access token; renews the session once on a 401. */
  async function api(method, path, payload, { etag, retried } = {}) {
    const headers = { Accept: "application/json" };
    if (session.access) headers.Authorization = `Bearer ${session.access}`;
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    if (etag) headers["If-None-Match"] = etag;
    const response = await fetch(path, {
      method,
      headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
      cache: "no-store",
    });
    if (response.status === 401 && session.refresh && !retried) {
      await renew();
      return api(method, path, payload, { etag, retried: true });
    }
    return response;
  }

  async function call(method, path, payload) {
    const response = await api(method, path, payload);
    if (!response.ok) throw await problemOf(response);
    return response.status === 204 ? null : response.json();
  }

  async function signIn(event) {
    event.preventDefault();
    const email = $("signin-email").value.trim();
    const password = $("signin-password").value;
    fieldError("signin-email", email ? (/^[^@\s]+@[^@\s]+$/.test(email) ? "" : "Enter an email address like name@example.com.") : "Enter your email address.");
    fieldError("signin-password", password ? "" : "Enter your password.");
    showError("signin-error", "");
    if (!email || !password || $("signin-email").getAttribute("aria-invalid")) {
      (email && !$("signin-email").getAttribute("aria-invalid") ? $("signin-password") : $("signin-email")).focus();
      return;
    }
    const button = event.submitter || $("signin-form").querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch("/v1/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email, password }),
      });
      if (!response.ok) {
        const problem = await problemOf(response);
        showError("signin-error", response.status === 401 ? "That email and password do not match an account." :
          response.status === 429 ? "Too many attempts. Wait a minute and try again." : problem.message);
        $("signin-password").focus();
        return;
      }
      const tokens = await response.json();
      if (!["editor", "admin"].includes(tokens.user && tokens.user.role)) {
        session.access = tokens.access_token;
        await fetch("/v1/auth/logout", {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${tokens.access_token}` },
          body: JSON.stringify({ refresh_token: tokens.refresh_token }),
        }).catch(() => {});
        session.access = null;
        showError("signin-error", "This account is not an editor's. Ask an admin to make it one.");
        return;
      }
      adopt(tokens);
      $("signin-password").value = "";
      signedIn();
    } catch (err) {
      showError("signin-error", "Herald could not be reached. Check the connection and try again.");
    } finally {
      button.disabled = false;
    }
  }

  async function signOut() {
    const refresh = session.refresh;
    try {
      if (refresh) await api("POST", "/v1/auth/logout", { refresh_token: refresh });
    } catch { /* signed out locally all the same */ }
    forget();
    signedOut("You are signed out.");
  }

  function signedIn() {
    $("nav").hidden = false;
    $("account").hidden = false;
    $("who").textContent = session.user.email || session.user.display_name || "editor";
    $("who").title = $("who").textContent;
    loadTopics().catch(() => {});
    if (!location.hash || location.hash === "#signin") location.hash = "#stories";
    else route();
  }

  function signedOut(message) {
    stopAll();
    $("nav").hidden = true;
    $("account").hidden = true;
    showView("signin");
    if (message) flash(message);
  }

  // ---- views -------------------------------------------------------------------------------

  const VIEWS = ["signin", "stories", "compose", "alert", "history", "sources"];
  const TITLES = { signin: "Sign in", stories: "Stories", compose: "Send an alert", alert: "Alert", history: "Alerts sent", sources: "Sources" };
  const timers = {};

  function stopAll() {
    for (const key of Object.keys(timers)) { clearTimeout(timers[key]); delete timers[key]; }
  }

  function showView(name) {
    for (const v of VIEWS) $(`${v}-view`).hidden = v !== name;
    for (const link of document.querySelectorAll("nav a")) {
      if (link.dataset.view === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.title = `${TITLES[name]} · ${SITE} newsroom`;
  }

  function focusHeading(name) {
    const heading = $(`${name}-heading`);
    if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus({ preventScroll: false }); }
  }

  function route() {
    if (!session.access) { showView("signin"); return; }
    stopAll();
    const hash = location.hash.replace(/^#/, "") || "stories";
    const [path, query] = hash.split("?");
    const params = new URLSearchParams(query || "");
    const [name, id] = path.split("/");
    switch (name) {
      case "compose": showView("compose"); openComposer(params); break;
      case "alert": showView("alert"); openAlert(id); break;
      case "history": showView("history"); openHistory(); break;
      case "sources": showView("sources"); openSources(); break;
      default: showView("stories"); openStories(); name === "stories" || (location.hash = "#stories");
    }
    focusHeading(name === "compose" || name === "alert" || name === "history" || name === "sources" ? name : "stories");
  }

  // ---- topics ------------------------------------------------------------------------------

  let topicList = [];

  async function loadTopics() {
    topicList = await call("GET", "/v1/topics");
    const select = $("stories-topic");
    const chosen = select.value;
    select.replaceChildren(h("option", { value: "" }, "All topics"),
      ...topicList.map((t) => h("option", { value: t.slug }, t.name)));
    select.value = chosen;
    $("source-topic-boxes").replaceChildren(...topicBoxes("source-topic", []));
    return topicList;
  }

  function topicName(slug) {
    const topic = topicList.find((t) => t.slug === slug);
    return topic ? topic.name : slug;
  }

  function topicBoxes(prefix, checked, onchange) {
    return topicList.map((t) => h("label", {},
      h("input", { type: "checkbox", name: "topics", value: t.slug, id: `${prefix}-${t.slug}`, checked: checked.includes(t.slug), onchange }),
      t.name));
  }

  const checkedTopics = (container) => [...container.querySelectorAll("input[type=checkbox]:checked")].map((i) => i.value);

  // ---- stories -----------------------------------------------------------------------------

  const stories = { etag: null, key: "", first: [], older: [], cursor: null, known: null };

  function storiesQuery() {
    const params = new URLSearchParams({ limit: "30" });
    const topic = $("stories-topic").value;
    const q = $("stories-q").value.trim();
    if (topic) params.set("topic", topic);
    if (q) params.set("q", q);
    return params;
  }

  function openStories() {
    pollStories();
  }

  async function pollStories() {
    clearTimeout(timers.stories);
    try {
      const params = storiesQuery();
      const key = params.toString();
      if (key !== stories.key) {
        Object.assign(stories, { key, etag: null, first: [], older: [], cursor: null, known: null });
      }
      const response = await api("GET", `/v1/admin/stories?${key}`, undefined, { etag: stories.etag });
      if (response.status === 200) {
        stories.etag = response.headers.get("ETag");
        const page = await response.json();
        const fresh = stories.known ? page.items.filter((s) => !stories.known.has(s.id)).map((s) => s.id) : [];
        stories.known = new Set([...(stories.known || []), ...page.items.map((s) => s.id)]);
        stories.first = page.items;
        if (!stories.older.length) stories.cursor = page.next_cursor;
        renderStories(new Set(fresh));
        if (fresh.length) $("stories-status").textContent = `${fresh.length} new ${fresh.length === 1 ? "story" : "stories"} just arrived.`;
      } else if (response.status !== 304) {
        throw await problemOf(response);
      }
      if (!stories.first.length) $("stories-status").textContent = "No stories yet. They appear here as the feeds bring them.";
    } catch (err) {
      $("stories-status").textContent = `Stories could not be loaded (${err.message}); retrying.`;
    }
    if (!$("stories-view").hidden) timers.stories = setTimeout(pollStories, STORIES_POLL_MS);
  }

  function renderStories(fresh) {
    const seen = new Set();
    const all = [...stories.first, ...stories.older].filter((s) => !seen.has(s.id) && seen.add(s.id));
    $("stories-list").replaceChildren(...all.map((story) => storyCard(story, fresh.has(story.id))));
    $("stories-more").hidden = !stories.cursor;
  }

  function storyCard(story, fresh) {
    const badges = [];
    if (story.breaking) badges.push(h("span", { class: "badge breaking" }, "Breaking"));
    else if (story.near_breaking) {
      const window = story.window_minutes >= 120 ? `${Math.round(story.window_minutes / 60)} h` : `${story.window_minutes} min`;
      badges.push(h("span", { class: "badge near" }, `Near breaking: ${story.publishers_in_window} of ${story.min_sources} publishers within ${window}`));
    }
    if (story.alerted) badges.push(h("span", { class: "badge alerted" }, "Alerted"));
    const articles = h("div", { class: "articles", id: `articles-${story.id}`, hidden: true });
    const toggle = h("button", {
      type: "button", class: "quiet", "aria-expanded": "false", "aria-controls": `articles-${story.id}`,
      onclick: async () => {
        const open = toggle.getAttribute("aria-expanded") === "true";
        toggle.setAttribute("aria-expanded", String(!open));
        articles.hidden = open;
        if (!open && !articles.childElementCount) {
          try {
            const detail = await call("GET", `/v1/stories/${story.id}`);
            articles.replaceChildren(h("ul", {}, detail.articles.map((a) => h("li", {},
              h("span", {}, a.title, " — ", a.source.name, " · "), when(a.published_at), " ",
              h("a", { href: `#compose?article=${a.id}` }, "Send alert about this article")))));
          } catch (err) {
            articles.replaceChildren(h("p", { class: "form-error" }, `Articles could not be loaded (${err.message}).`));
          }
        }
      },
    }, "Articles");
    return h("li", { class: fresh ? "card fresh" : "card", "data-story": story.id },
      h("h2", {}, story.headline),
      h("p", { class: "meta" },
        badges,
        story.topics.map(topicName).join(", ") || "No topic", " · ",
        `${story.source_count} ${story.source_count === 1 ? "publisher" : "publishers"}`, " · ",
        `${story.article_count} ${story.article_count === 1 ? "article" : "articles"}`, " · first seen ",
        when(story.first_seen_at), " · last ", when(story.updated_at)),
      h("div", { class: "actions" },
        h("a", { class: "button primary-link", href: `#compose?story=${story.id}`, "aria-label": `Send alert: ${story.headline}` }, "Send alert"),
        toggle),
      articles);
  }

  async function olderStories() {
    if (!stories.cursor) return;
    const params = storiesQuery();
    params.set("cursor", stories.cursor);
    try {
      const page = await call("GET", `/v1/admin/stories?${params}`);
      stories.older.push(...page.items);
      stories.cursor = page.next_cursor;
      for (const s of page.items) stories.known.add(s.id);
      renderStories(new Set());
    } catch (err) {
      $("stories-status").textContent = `Older stories could not be loaded (${err.message}).`;
    }
  }

  // ---- compose -----------------------------------------------------------------------------

  // Where each platform cuts a notification, in characters at its default text size on a
  // typical screen (a 390 pt iPhone, a 412 dp Android phone, Chrome's notification on
  // Windows and macOS). Fonts are proportional, so these are the usual cut, not an exact one.
  const PREVIEW_LIMITS = {
    ios: { title: 38, body: 150 }, // one line of title, four of body on the lock screen
    android: { title: 40, body: 48 }, // collapsed: one line each
    desktop: { title: 55, body: 120 }, // one line of title, three of body
  };

  const cut = (text, limit) => (text.length > limit ? `${text.slice(0, limit - 1).trimEnd()}…` : text);

  const composer = { subject: {}, estimateSeq: 0, estimateTimer: null, estimate: null };

  function composerPayload() {
    const payload = {
      title: $("compose-title").value.trim(),
      body: $("compose-body").value.trim(),
      topics: checkedTopics($("compose-topic-boxes")),
      urgency: $("compose-urgency").value,
      ttl_seconds: Number($("compose-ttl").value),
    };
    if (composer.subject.story_id) payload.story_id = composer.subject.story_id;
    if (composer.subject.article_id) payload.article_id = composer.subject.article_id;
    return payload;
  }

  async function openComposer(params) {
    $("confirm").hidden = true;
    showError("compose-error", "");
    for (const id of ["compose-title", "compose-body", "compose-topics"]) fieldError(id, "");
    composer.subject = {};
    $("compose-about").textContent = "Loading…";
    if (!topicList.length) await loadTopics().catch(() => {});
    let title = "";
    let text = "";
    let topics = [];
    try {
      if (params.get("article")) {
        const article = await call("GET", `/v1/articles/${encodeURIComponent(params.get("article"))}`);
        composer.subject = { article_id: article.id, story_id: article.story_id || undefined };
        title = article.title;
        text = article.summary || "";
        topics = article.topics;
        $("compose-about").textContent = `About the article “${article.title}” (${article.source.name}).`;
      } else if (params.get("story")) {
        const story = await call("GET", `/v1/stories/${encodeURIComponent(params.get("story"))}`);
        composer.subject = { story_id: story.id };
        // As the server does for a story: its headline, and its newest linked article's summary.
        const newest = story.articles.filter((a) => a.url).sort((a, b) => Date.parse(b.published_at) - Date.parse(a.published_at))[0];
        title = story.headline;
        text = newest ? newest.summary || "" : "";
        topics = story.topics.length ? story.topics : newest ? newest.topics : [];
        $("compose-about").textContent = `About the story “${story.headline}” (${story.source_count} publishers).`;
      } else {
        $("compose-about").textContent = "Pick a story first: each story has a “Send alert” button.";
      }
    } catch (err) {
      $("compose-about").textContent = `That story or article could not be loaded (${err.message}).`;
    }
    $("compose-title").value = title.slice(0, 300);
    $("compose-body").value = text.slice(0, 200);
    $("compose-urgency").value = "normal";
    $("compose-ttl").value = "3600";
    $("compose-topic-boxes").replaceChildren(...topicBoxes("compose-topic", topics, () => scheduleEstimate()));
    updatePreviews();
    scheduleEstimate(0);
  }

  function updatePreviews() {
    const title = $("compose-title").value.trim() || "Title";
    const text = $("compose-body").value.trim();
    for (const [platform, limit] of Object.entries(PREVIEW_LIMITS)) {
      $(`preview-${platform}-title`).textContent = cut(title, limit.title);
      $(`preview-${platform}-body`).textContent = cut(text, limit.body);
    }
    for (const el of document.querySelectorAll(".preview .appname")) el.textContent = SITE;
    $("preview-desktop-origin").textContent = location.host;
    $("compose-title-count").textContent = `${$("compose-title").value.length} of 300 characters; the iPhone shows about ${PREVIEW_LIMITS.ios.title}, Android about ${PREVIEW_LIMITS.android.title}.`;
    $("compose-body-count").textContent = `${$("compose-body").value.length} of 1000 characters; the iPhone shows about ${PREVIEW_LIMITS.ios.body}, Android about ${PREVIEW_LIMITS.android.body}.`;
  }

  function scheduleEstimate(delay = 300) {
    clearTimeout(composer.estimateTimer);
    composer.estimateTimer = setTimeout(estimate, delay);
  }

  async function estimate() {
    const payload = composerPayload();
    const box = $("estimate");
    composer.estimate = null;
    if (!payload.topics.length) {
      box.replaceChildren(h("p", { class: "muted" }, "Choose a topic to see who would get it."));
      return null;
    }
    const seq = ++composer.estimateSeq;
    box.setAttribute("aria-busy", "true");
    try {
      const result = await call("POST", "/v1/admin/alerts/estimate", {
        topics: payload.topics, urgency: payload.urgency,
        story_id: payload.story_id, article_id: payload.article_id,
      });
      if (seq !== composer.estimateSeq) return null;
      composer.estimate = result;
      const skipped = result.skipped;
      box.replaceChildren(
        h("p", { class: "big", id: "estimate-send" }, `${number(result.would_send)} ${result.would_send === 1 ? "device" : "devices"}`),
        h("p", {}, "would get it if sent now."),
        h("ul", {},
          h("li", {}, `${number(result.targeted)} devices follow ${result.topics.map(topicName).join(", ")}`),
          h("li", {}, `${number(skipped.quiet_hours)} skipped for quiet hours`),
          h("li", {}, `${number(skipped.daily_cap)} skipped at their daily cap`),
          h("li", {}, `${number(skipped.duplicate)} skipped: already had this story`)));
      return result;
    } catch (err) {
      if (seq === composer.estimateSeq) box.replaceChildren(h("p", { class: "form-error" }, `No estimate: ${err.message}`));
      return null;
    } finally {
      if (seq === composer.estimateSeq) box.removeAttribute("aria-busy");
    }
  }

  function validateComposer() {
    const payload = composerPayload();
    const errors = {
      "compose-title": payload.title ? "" : "Give the alert a title.",
      "compose-topics": payload.topics.length ? "" : "Choose at least one topic.",
    };
    for (const [id, message] of Object.entries(errors)) fieldError(id, message);
    const first = Object.entries(errors).find(([, m]) => m);
    if (first) {
      (first[0] === "compose-topics" ? $("compose-topic-boxes").querySelector("input") || $("compose-title") : $(first[0])).focus();
      return null;
    }
    return payload;
  }

  async function review(event) {
    event.preventDefault();
    showError("compose-error", "");
    const payload = validateComposer();
    if (!payload) return;
    const result = await estimate();
    const audience = result ? `${number(result.would_send)} ${result.would_send === 1 ? "device" : "devices"}` : "its audience";
    $("confirm-summary").replaceChildren(
      "“", h("strong", {}, payload.title), "” goes to ", h("strong", {}, audience),
      ` following ${payload.topics.map(topicName).join(", ")}, urgency ${payload.urgency}, worth delivering for ${$("compose-ttl").selectedOptions[0].textContent}. It cannot be unsent; you can cancel what has not gone out yet.`);
    $("confirm").hidden = false;
    $("confirm").focus();
  }

  const alertTitles = new Map();

  async function send() {
    const payload = validateComposer();
    if (!payload) { $("confirm").hidden = true; return; }
    const button = $("confirm-send");
    button.disabled = true;
    try {
      const created = await call("POST", "/v1/admin/alerts", payload);
      alertTitles.set(created.id, payload.title);
      flash("Alert queued; it is going out now.");
      location.hash = `#alert/${created.id}`;
    } catch (err) {
      $("confirm").hidden = true;
      const fields = (err.problem && err.problem.errors) || [];
      for (const f of fields) {
        const id = f.field === "topics" ? "compose-topics" : `compose-${f.field}`;
        if ($(`${id}-error`)) fieldError(id, f.message);
      }
      showError("compose-error", `Not sent: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  // ---- an alert going out ------------------------------------------------------------------
  //
  // Progress is read every PROGRESS_POLL_MS from GET /v1/admin/alerts/{id}, whose counters are
  // sums kept on the alert's batches (the same cost at the first delivery and the millionth).
  // Not server-sent events: EventSource cannot send the Authorization header, and an access
  // token in a URL ends up in logs. Rate per second is the change in `sent` over the last
  // three seconds of polls; time to 90 % is when a poll first saw 90 % of the targeted devices
  // with an outcome (at most one poll late).

  const watch = { id: null, samples: [], ninety: null, last: null };

  function openAlert(id) {
    if (watch.id !== id) Object.assign(watch, { id, samples: [], ninety: null, last: null, filled: false });
    $("alert-title").textContent = alertTitles.get(id) || "";
    if (!alertTitles.has(id)) {
      // Opened by its address (a reload, a shared link): the title is in the recent history.
      call("GET", "/v1/admin/alerts?limit=100").then((page) => {
        for (const a of page.items) alertTitles.set(a.id, a.title);
        if (watch.id === id) $("alert-title").textContent = alertTitles.get(id) || "";
      }, () => {});
    }
    $("alert-counters").replaceChildren();
    $("alert-versions").replaceChildren();
    $("analytics-table").tBodies[0].replaceChildren();
    $("analytics-summary").textContent = "";
    $("opens-chart").replaceChildren();
    $("opens-summary").textContent = "";
    pollAlert();
  }

  async function pollAlert() {
    clearTimeout(timers.alert);
    const id = watch.id;
    let active = true;
    try {
      const status = await call("GET", `/v1/admin/alerts/${encodeURIComponent(id)}`);
      if (id !== watch.id) return;
      active = ["scheduled", "queued", "sending"].includes(status.state) || status.replacing > 0;
      renderAlert(status);
      if (!active) await Promise.all([loadOpens(id), loadAnalytics(id)]);
    } catch (err) {
      $("alert-state").textContent = err.status === 404 ? "no such alert" : `unknown (${err.message})`;
      return;
    }
    if (!$("alert-view").hidden) timers.alert = setTimeout(pollAlert, active ? PROGRESS_POLL_MS : OPENS_POLL_MS);
  }

  function renderAlert(status) {
    const now = Date.now();
    const skipped = status.skipped.quiet_hours + status.skipped.daily_cap + status.skipped.duplicate;
    const done = status.sent + status.failed + status.pruned + skipped;
    watch.samples.push({ t: now, sent: status.sent });
    watch.samples = watch.samples.filter((x) => now - x.t <= 3000);
    const created = Date.parse(status.created_at);
    const finished = status.finished_at ? Date.parse(status.finished_at) : null;
    let rate;
    if (finished) {
      rate = status.sent / Math.max(0.001, (finished - created) / 1000);
    } else {
      const first = watch.samples[0];
      rate = now > first.t ? ((status.sent - first.sent) * 1000) / (now - first.t) : 0;
    }
    if (watch.ninety === null && status.targeted > 0 && done >= 0.9 * status.targeted) {
      // Seen on this poll: at most one poll interval late; an alert already finished when first
      // seen is bounded by its finish time.
      const seenAt = finished && !watch.last ? finished : now;
      watch.ninety = { seconds: (seenAt - created) / 1000, bound: !!finished && !watch.last };
    }
    watch.last = status;
    $("alert-state").textContent = status.state;
    $("alert-meter").style.width = `${status.targeted ? Math.min(100, (100 * done) / status.targeted) : status.state === "done" ? 100 : 0}%`;
    const ninety = watch.ninety ? `${watch.ninety.bound ? "≤ " : ""}${watch.ninety.seconds.toFixed(1)} s` : "—";
    const items = [
      ["Targeted", number(status.targeted), "targeted"],
      ["Sent", number(status.sent), "sent"],
      ["Failed", number(status.failed), "failed"],
      ["Pruned (gone)", number(status.pruned), "pruned"],
      ["Skipped: quiet hours", number(status.skipped.quiet_hours), "quiet"],
      ["Skipped: daily cap", number(status.skipped.daily_cap), "cap"],
      ["Skipped: had the story", number(status.skipped.duplicate), "duplicate"],
      [finished ? "Average rate" : "Rate", `${number(Math.round(rate))}/s`, "rate"],
      ["Time to 90 %", ninety, "ninety"],
      ["Opened", `${number(status.opened)}${status.sent ? ` (${percent(status.opened / status.sent)})` : ""}`, "opened"],
    ];
    $("alert-counters").replaceChildren(...items.map(([label, value, key]) =>
      h("div", { "data-counter": key }, h("dt", {}, label), h("dd", {}, value))));
    $("alert-cancel").hidden = !["scheduled", "queued", "sending"].includes(status.state);
    $("alert-retract").hidden = status.state !== "done";
    $("alert-update").hidden = !["scheduled", "queued", "sending", "done"].includes(status.state);
    const versions = status.versions || [];
    const latest = versions[versions.length - 1];
    if (latest && !watch.filled) {
      watch.filled = true;
      $("update-title").value = latest.title;
      $("update-body").value = latest.body;
    }
    $("alert-versions").replaceChildren(...versions.map((v) => h("li", { "data-version": String(v.version) },
      h("strong", {}, `${v.kind === "original" ? "Original" : v.kind === "update" ? "Update" : "Withdrawal"} (v${v.version})`),
      " ", when(v.created_at), `: “${v.title}” — ${v.body || "no text"}`, h("br"),
      h("span", { class: "muted" }, `${number(v.showing)} devices show it` +
        (v.version > 1 ? `; replaced on ${number(v.replaced)}, failed ${number(v.replace_failed)}, held for quiet hours ${number(v.held_quiet_hours)}` : "") +
        (v.silent ? "; quietly" : "")))));
  }

  async function updateAlert(event) {
    event.preventDefault();
    const id = watch.id;
    const latest = (watch.last && watch.last.versions || []).slice(-1)[0] || {};
    const change = { silent: !$("update-loud").checked };
    const title = $("update-title").value.trim();
    const body = $("update-body").value.trim();
    if (title !== latest.title) change.title = title;
    if (body !== latest.body) change.body = body;
    for (const f of ["update-title", "update-body"]) fieldError(f, "");
    $("update-error").hidden = true;
    if (change.title === undefined && change.body === undefined) {
      showError("update-error", "Nothing changed: edit the title or the text first.");
      return;
    }
    $("update-send").disabled = true;
    try {
      const status = await call("PATCH", `/v1/admin/alerts/${encodeURIComponent(id)}`, change);
      renderAlert(status);
      flash(status.version > 1
        ? `Version ${status.version} is going out to the phones that show this alert.`
        : "Updated: it goes out with the new text.");
    } catch (err) {
      for (const f of err.errors || []) if ($(`update-${f.field}-error`)) fieldError(`update-${f.field}`, f.message);
      showError("update-error", `Not updated: ${err.message}`);
    } finally {
      $("update-send").disabled = false;
      pollAlert();
    }
  }

  async function retractAlert() {
    if (!window.confirm("Withdraw this alert? It leaves every reader's inbox, and phones that show it are told it was withdrawn.")) return;
    const id = watch.id;
    $("alert-retract").disabled = true;
    try {
      renderAlert(await call("DELETE", `/v1/admin/alerts/${encodeURIComponent(id)}`));
      flash("Withdrawn: phones that show it are being told.");
    } catch (err) {
      flash(`Could not withdraw it: ${err.message}`);
    } finally {
      $("alert-retract").disabled = false;
      pollAlert();
    }
  }

  async function loadAnalytics(id) {
    const a = await call("GET", `/v1/admin/alerts/${encodeURIComponent(id)}/analytics`);
    if (id !== watch.id) return;
    const seconds = (v) => (v === null ? "—" : `${v.toFixed(1)} s`);
    $("analytics-summary").textContent = `${number(a.delivered)} delivered, ${percent(a.open_rate)} opened; ` +
      `half delivered in ${seconds(a.seconds_to_50_percent)}, nine tenths in ${seconds(a.seconds_to_90_percent)}.`;
    const row = (label, x) => h("tr", {}, h("td", {}, label), h("td", { class: "num" }, number(x.delivered)),
      h("td", { class: "num" }, number(x.opened)), h("td", { class: "num" }, percent(x.open_rate)));
    const platforms = { web: "Browsers", android: "Android", ios: "iPhone" };
    $("analytics-table").tBodies[0].replaceChildren(
      ...a.by_platform.map((x) => row(platforms[x.key] || x.key, x)),
      ...a.by_topic.map((x) => row(`Topic: ${topicName(x.key)}`, x)));
  }

  async function cancelAlert() {
    const id = watch.id;
    $("alert-cancel").disabled = true;
    try {
      const status = await call("DELETE", `/v1/admin/alerts/${encodeURIComponent(id)}`);
      renderAlert(status);
      flash("Cancelled: nothing more goes out.");
    } catch (err) {
      flash(err.status === 409 ? `Too late to cancel: ${err.message}.` : `Could not cancel: ${err.message}`);
    } finally {
      $("alert-cancel").disabled = false;
      pollAlert();
    }
  }

  async function loadOpens(id) {
    const opens = await call("GET", `/v1/admin/alerts/${encodeURIComponent(id)}/opens`);
    if (id !== watch.id) return;
    const summary = `${number(opens.opened)} opened of ${number(opens.sent)} delivered (${percent(opens.open_rate)}).`;
    $("opens-summary").textContent = summary;
    $("opens-chart").replaceChildren(opensChart(opens, summary));
  }

  /** Cumulative opens (solid, left axis) and open rate (dashed, right axis) as inline SVG. */
  function opensChart(opens, summary) {
    const W = 640, H = 240, L = 48, R = 56, T = 24, B = 34;
    const points = opens.points;
    const maxOpened = Math.max(1, ...points.map((p) => p.opened));
    const maxRate = Math.max(0.01, ...points.map((p) => p.open_rate));
    const x = (i) => L + ((W - L - R) * (points.length <= 1 ? 1 : i / (points.length - 1)));
    const y = (v, max) => H - B - ((H - T - B) * v) / max;
    const path = (pick, max) => points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(pick(p), max).toFixed(1)}`).join(" ");
    const start = Date.parse(points.length ? points[0].at : Date.now()) - opens.interval_seconds * 1000;
    const label = (p) => {
      const seconds = (Date.parse(p.at) - start) / 1000;
      if (seconds < 120) return `${Math.round(seconds)} s`;
      const minutes = seconds / 60;
      return minutes < 120 ? `${Math.round(minutes)} min` : `${(minutes / 60).toFixed(1)} h`;
    };
    const grid = [0, 0.5, 1].map((f) => s("g", {},
      s("line", { class: "grid", x1: L, x2: W - R, y1: y(f * maxOpened, maxOpened), y2: y(f * maxOpened, maxOpened) }),
      s("text", { x: L - 6, y: y(f * maxOpened, maxOpened) + 4, "text-anchor": "end" }, number(Math.round(f * maxOpened))),
      s("text", { x: W - R + 6, y: y(f * maxOpened, maxOpened) + 4 }, percent(f * maxRate))));
    const ticks = points.length ? [0, Math.floor((points.length - 1) / 2), points.length - 1] : [];
    return s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Opens over time: ${summary}` },
      s("title", {}, `Opens over time: ${summary}`),
      grid,
      s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }),
      [...new Set(ticks)].map((i) => s("text", { x: x(i), y: H - B + 16, "text-anchor": "middle" }, label(points[i]))),
      s("path", { class: "opens", d: path((p) => p.opened, maxOpened) }),
      s("path", { class: "rate", d: path((p) => p.open_rate, maxRate) }),
      s("rect", { class: "legend-opens", x: L, y: 6, width: 12, height: 4 }),
      s("text", { x: L + 16, y: 12 }, "Readers who opened (left)"),
      s("rect", { class: "legend-rate", x: L + 190, y: 6, width: 12, height: 4 }),
      s("text", { x: L + 206, y: 12 }, "Open rate (right)"));
  }

  // ---- history -----------------------------------------------------------------------------

  const history = { cursor: null, items: [] };

  async function openHistory() {
    history.items = [];
    history.cursor = null;
    await moreHistory();
  }

  async function moreHistory() {
    const params = new URLSearchParams({ limit: "20" });
    if (history.cursor) params.set("cursor", history.cursor);
    try {
      const page = await call("GET", `/v1/admin/alerts?${params}`);
      history.items.push(...page.items);
      history.cursor = page.next_cursor;
      for (const a of page.items) alertTitles.set(a.id, a.title);
      renderHistory();
    } catch (err) {
      $("history-status").textContent = `Alerts could not be loaded (${err.message}).`;
    }
  }

  function renderHistory() {
    const rows = history.items.map((a) => h("tr", { "data-alert": a.id },
      h("td", {}, h("a", { href: `#alert/${a.id}` }, a.title), h("br"), h("span", { class: "muted" }, a.topics.map(topicName).join(", "))),
      h("td", {}, a.sent_by ? a.sent_by.email || "a deleted editor" : `automatic (${a.trigger})`),
      h("td", {}, when(a.created_at)),
      h("td", {}, a.state),
      h("td", { class: "num" }, number(a.targeted)),
      h("td", { class: "num" }, number(a.sent)),
      h("td", { class: "num" }, `${number(a.opened)}${a.sent ? ` (${percent(a.opened / a.sent)})` : ""}`)));
    $("history-table").tBodies[0].replaceChildren(...rows);
    $("history-status").textContent = history.items.length ? `${history.items.length} alerts shown.` : "No alert has been sent yet.";
    $("history-more").hidden = !history.cursor;
  }

  // ---- sources -----------------------------------------------------------------------------

  function openSources() {
    pollSources();
  }

  async function pollSources() {
    clearTimeout(timers.sources);
    try {
      const list = await call("GET", "/v1/admin/sources");
      // Keep an open topic editor as it is: re-rendering would lose the editor's choices.
      if (!document.querySelector("#sources-list form")) renderSources(list);
      $("sources-status").textContent = `${list.length} ${list.length === 1 ? "source" : "sources"}.`;
    } catch (err) {
      $("sources-status").textContent = `Sources could not be loaded (${err.message}); retrying.`;
    }
    if (!$("sources-view").hidden) timers.sources = setTimeout(pollSources, SOURCES_POLL_MS);
  }

  function renderSources(list) {
    $("sources-list").replaceChildren(...list.map(sourceCard));
  }

  function sourceCard(src) {
    const health = src.health;
    const failing = health.error_count > 0;
    const badges = [
      health.paused && h("span", { class: "badge paused" }, "Paused"),
      failing && h("span", { class: "badge error" }, `Failing: ${health.error_count} in a row`),
    ];
    const editor = h("div", { class: "topic-editor" });
    const editButton = h("button", {
      type: "button", "aria-expanded": "false",
      onclick: () => {
        if (editor.childElementCount) { editor.replaceChildren(); editButton.setAttribute("aria-expanded", "false"); return; }
        editButton.setAttribute("aria-expanded", "true");
        const boxes = h("div", { class: "checks" }, topicBoxes(`src-${src.id}`, src.topics));
        const error = h("p", { class: "form-error", role: "alert", hidden: true });
        const form = h("form", {
          onsubmit: async (event) => {
            event.preventDefault();
            try {
              await call("PATCH", `/v1/admin/sources/${src.id}`, { topics: checkedTopics(boxes) });
              editor.replaceChildren();
              flash(`Topics of ${src.name} saved.`);
              pollSources();
            } catch (err) {
              error.textContent = `Not saved: ${err.message}`;
              error.hidden = false;
            }
          },
        },
        h("fieldset", { class: "field" }, h("legend", {}, `Topics of ${src.name}`), boxes),
        error,
        h("div", { class: "actions" },
          h("button", { type: "submit", class: "primary" }, "Save topics"),
          h("button", { type: "button", onclick: () => { editor.replaceChildren(); editButton.setAttribute("aria-expanded", "false"); editButton.focus(); } }, "Cancel")));
        editor.replaceChildren(form);
        boxes.querySelector("input") && boxes.querySelector("input").focus();
      },
    }, "Edit topics");
    return h("li", { class: "card", "data-source": src.id },
      h("h2", {}, src.name),
      h("p", { class: "meta" }, badges, src.topics.map(topicName).join(", ") || "No topics", " · ", h("span", { class: "url" }, src.url)),
      h("dl", { class: "health" },
        h("dt", {}, "Last fetch"), h("dd", {}, when(health.last_fetch_at)),
        h("dt", {}, "Status"), h("dd", {}, health.last_status ? `HTTP ${health.last_status}` : health.last_fetch_at ? "no answer" : "—"),
        h("dt", {}, "Errors in a row"), h("dd", {}, String(health.error_count)),
        h("dt", {}, "Last error"), h("dd", {}, health.last_error || "none"),
        h("dt", {}, "Next fetch"), h("dd", {}, health.paused ? "paused" : when(health.next_fetch_at)),
        h("dt", {}, "Items per day"), h("dd", {}, health.items_per_day.toFixed(1))),
      h("div", { class: "actions" },
        h("button", {
          type: "button",
          onclick: async () => {
            try {
              await call("PATCH", `/v1/admin/sources/${src.id}`, { paused: !health.paused });
              flash(health.paused ? `${src.name} resumed; fetching now.` : `${src.name} paused.`);
              pollSources();
            } catch (err) { flash(`Could not change ${src.name}: ${err.message}`); }
          },
        }, health.paused ? `Resume ${src.name}` : `Pause ${src.name}`),
        editButton),
      editor);
  }

  async function addSource(event) {
    event.preventDefault();
    const name = $("source-name").value.trim();
    const url = $("source-url").value.trim();
    fieldError("source-name", name ? "" : "Enter the publisher's name.");
    fieldError("source-url", /^https?:\/\/\S+$/i.test(url) ? "" : "Enter the feed's full address, starting with http:// or https://.");
    showError("source-error", "");
    if (!name) { $("source-name").focus(); return; }
    if ($("source-url").getAttribute("aria-invalid")) { $("source-url").focus(); return; }
    try {
      await call("POST", "/v1/admin/sources", { name, url, topics: checkedTopics($("source-topic-boxes")) });
      $("source-form").reset();
      flash(`${name} added; it is being fetched now.`);
      pollSources();
    } catch (err) {
      const fields = (err.problem && err.problem.errors) || [];
      for (const f of fields) if ($(`source-${f.field}-error`)) fieldError(`source-${f.field}`, f.message);
      showError("source-error", err.status === 409 ? "A source with this feed address exists already." : `Not added: ${err.message}`);
    }
  }

  // ---- start -------------------------------------------------------------------------------

  function start() {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("stories-filter").addEventListener("submit", (e) => { e.preventDefault(); pollStories(); });
    $("stories-topic").addEventListener("change", () => pollStories());
    $("stories-more").addEventListener("click", olderStories);
    $("compose-form").addEventListener("submit", review);
    $("compose-title").addEventListener("input", updatePreviews);
    $("compose-body").addEventListener("input", updatePreviews);
    $("compose-urgency").addEventListener("change", () => scheduleEstimate(0));
    $("confirm-send").addEventListener("click", send);
    $("confirm-back").addEventListener("click", () => { $("confirm").hidden = true; $("compose-title").focus(); });
    $("alert-cancel").addEventListener("click", cancelAlert);
    $("alert-retract").addEventListener("click", retractAlert);
    $("update-form").addEventListener("submit", updateAlert);
    $("history-more").addEventListener("click", moreHistory);
    $("source-form").addEventListener("submit", addSource);
    window.addEventListener("hashchange", route);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && session.access && !$("stories-view").hidden) pollStories();
    });
    let kept = null;
    try { kept = sessionStorage.getItem(REFRESH_KEY); } catch { kept = null; }
    if (kept) {
      session.refresh = kept;
      renew().then(signedIn, () => signedOut());
    } else {
      showView("signin");
    }
  }

  start();
})();
