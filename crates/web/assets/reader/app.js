/* Herald reader: enhancements on server-rendered pages. Every page reads without this file;
 * with it a reader gets an anonymous session on first visit, follows topics, sets alert
 * preferences, turns alerts on, sees the inbox and can install the app. */
(function () {
  'use strict';

  var S = self.HeraldSession;
  var page = document.body.dataset.page;

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function say(el, text) { if (el) el.textContent = text; }

  function problem(response) {
    return response.json().then(function (body) {
      if (body && body.errors && body.errors.length) {
        return body.errors.map(function (e) { return e.field + ': ' + e.message; }).join('; ');
      }
      return (body && (body.detail || body.title)) || ('Error ' + response.status);
    }, function () { return 'Error ' + response.status; });
  }

  function reveal() { $all('[data-needs-js]').forEach(function (el) { el.hidden = false; }); }

  /* ---- Service worker and push --------------------------------------------------------- */

  var swReady = ('serviceWorker' in navigator)
    ? navigator.serviceWorker.register('/sw.js', { scope: '/' }).then(function () { return navigator.serviceWorker.ready; })
    : Promise.resolve(null);
  swReady.catch(function (err) { console.warn('service worker not registered', err); });

  function isIos() { return /iphone|ipad|ipod/i.test(navigator.userAgent) || (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1); }
  function isStandalone() { return navigator.standalone === true || (window.matchMedia && window.matchMedia('(display-mode: standalone)').matches); }
  function pushSupported() { return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window; }

  /* on | off | blocked | unsupported | ios-home-screen */
  function pushState() {
    if (!pushSupported()) return Promise.resolve(isIos() && !isStandalone() ? 'ios-home-screen' : 'unsupported');
    if (Notification.permission === 'denied') return Promise.resolve('blocked');
    return swReady.then(function (reg) {
      if (!reg) return 'unsupported';
      return reg.pushManager.getSubscription().then(function (sub) {
        if (!sub || Notification.permission !== 'granted') return 'off';
        return S.get(S.PUSH).then(function (record) {
          return record && record.endpoint === sub.endpoint ? 'on' : 'off';
        });
      });
    });
  }

  function keysEqual(a, b) {
    if (!a || !b || a.byteLength !== b.byteLength) return false;
    var x = new Uint8Array(a), y = new Uint8Array(b);
    for (var i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }

  function subscribe(reg) {
    return S.vapidKey().then(function (key) {
      return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: S.base64UrlToBytes(key) })
        .then(function (sub) { return S.registerDevice(sub, key); });
    });
  }

  function turnOn() {
    return Notification.requestPermission().then(function (permission) {
      if (permission !== 'granted') return pushState();
      return swReady.then(subscribe).then(function () { return 'on'; });
    });
  }

  function turnOff() {
    return swReady.then(function (reg) { return reg.pushManager.getSubscription(); }).then(function (sub) {
      return S.get(S.PUSH).then(function (record) {
        var forget = record && record.device_id
          ? S.api('DELETE', '/v1/devices/' + encodeURIComponent(record.device_id), undefined, { create: false })
          : Promise.resolve(null);
        return forget.then(function () { return S.remove(S.PUSH); })
          .then(function () { return sub ? sub.unsubscribe() : true; });
      });
    }).then(function () { return 'off'; });
  }

  /* Subscriptions heal: on every page load, if alerts are on, the browser's endpoint, the
   * server's VAPID key and the signed-in reader must match what was registered. */
  function heal() {
    if (!pushSupported() || Notification.permission !== 'granted') return Promise.resolve();
    return swReady.then(function (reg) {
      if (!reg) return;
      return reg.pushManager.getSubscription().then(function (sub) {
        if (!sub) return;
        return Promise.all([S.get(S.PUSH), S.vapidKey(), S.session({ create: false })]).then(function (all) {
          var record = all[0], key = all[1], session = all[2];
          if (!record) return; // turned off here: leave it off
          var serverKey = S.base64UrlToBytes(key).buffer;
          if (sub.options && sub.options.applicationServerKey && !keysEqual(sub.options.applicationServerKey, serverKey)) {
            return sub.unsubscribe().then(function () { return subscribe(reg); });
          }
          var userId = session && session.user && session.user.id;
          if (record.endpoint !== sub.endpoint || record.key !== key || record.user_id !== userId) {
            return S.registerDevice(sub, key);
          }
        });
      });
    }).catch(function (err) { console.warn('could not check the alert subscription', err); });
  }

  var PUSH_TEXT = {
    on: ['Alerts are on for this browser.', 'Turn off alerts'],
    off: ['Alerts are off for this browser.', 'Turn on alerts'],
    blocked: ['Alerts are blocked for this site. Allow notifications in your browser’s site settings, then reload this page.', null],
    unsupported: ['This browser cannot show alerts.', null],
    'ios-home-screen': ['On iPhone and iPad, alerts work in the installed app.', null]
  };

  function setupPushButton() {
    var status = $('[data-push-status]');
    var button = $('[data-push-toggle]');
    var hint = $('[data-push-hint]');
    if (!status || !button) return;
    var show = function (state) {
      var text = PUSH_TEXT[state] || PUSH_TEXT.unsupported;
      say(status, text[0]);
      button.dataset.state = state;
      button.hidden = !text[1];
      if (text[1]) say(button, text[1]);
      hint.hidden = state !== 'ios-home-screen';
      say(hint, state === 'ios-home-screen' ? 'Tap Share, then Add to Home Screen; open Herald from your Home Screen and turn alerts on there.' : '');
    };
    pushState().then(show);
    button.addEventListener('click', function () {
      button.disabled = true;
      var action = button.dataset.state === 'on' ? turnOff() : turnOn();
      action.then(show, function (err) {
        console.warn('alerts could not be changed', err);
        say(status, 'Alerts could not be changed just now. Please try again.');
      }).then(function () { button.disabled = false; });
    });
  }

  /* ---- Account ------------------------------------------------------------------------- */

  function showAccount(session) {
    var link = $('[data-account-link]');
    var user = session && session.user;
    if (link && user && !user.is_anonymous) link.title = 'Signed in as ' + user.email;
    var status = $('[data-account-status]');
    if (!status) return;
    var anonymous = !user || user.is_anonymous;
    say(status, anonymous
      ? 'You are reading without an account. What you follow is kept in this browser.'
      : 'Signed in as ' + user.email + '.');
    $all('[data-when="anonymous"]').forEach(function (el) { el.hidden = !anonymous; });
    $all('[data-when="account"]').forEach(function (el) { el.hidden = anonymous; });
    say($('[data-account-email]'), user && user.email ? user.email : '');
  }

  function accountForms() {
    var signup = $('form[data-form="signup"]');
    var login = $('form[data-form="login"]');
    var logout = $('[data-logout]');
    var submit = function (form, send) {
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        var error = $('[data-error]', form);
        say(error, '');
        var data = { email: form.elements.email.value.trim(), password: form.elements.password.value };
        send(data).then(function (r) {
          if (!r.ok) return problem(r).then(function (text) { say(error, text); });
          return r.json().then(S.save).then(function (session) {
            form.reset();
            showAccount(session);
            return heal();
          });
        }, function () { say(error, 'Could not reach Herald. Please try again.'); });
      });
    };
    // Signing up links the anonymous reader (same id, follows kept): POST /v1/me/link.
    if (signup) submit(signup, function (data) { return S.api('POST', '/v1/me/link', data); });
    // Logging in replaces the anonymous reader with the account's session.
    if (login) submit(login, function (data) { return S.postJson('/v1/auth/login', data); });
    if (logout) {
      logout.addEventListener('click', function () {
        logout.disabled = true;
        // This browser's alerts belonged to the account: stop them before the session ends.
        var stopAlerts = pushSupported() ? turnOff().catch(function () {}) : Promise.resolve();
        stopAlerts.then(function () { return S.session({ create: false }); }).then(function (s) {
          if (!s) return;
          return S.api('POST', '/v1/auth/logout', { refresh_token: s.refresh_token }, { create: false });
        }).then(function () { return S.clear(); }).then(function () {
          return S.session();
        }).then(showAccount).then(function () { logout.disabled = false; });
      });
    }
  }

  /* ---- Following and preferences -------------------------------------------------------- */

  function followButton() {
    var button = $('[data-follow]');
    if (!button) return;
    var slug = button.dataset.follow;
    // One name, pressed or not (a changing name would read as another button).
    var show = function (following) {
      button.setAttribute('aria-pressed', following ? 'true' : 'false');
      button.hidden = false;
    };
    S.api('GET', '/v1/me/subscriptions').then(function (r) { return r.ok ? r.json() : { topics: [] }; })
      .then(function (body) { show(body.topics.indexOf(slug) >= 0); });
    button.addEventListener('click', function () {
      var on = button.getAttribute('aria-pressed') !== 'true';
      button.disabled = true;
      var call = on
        ? S.api('POST', '/v1/me/subscriptions', { topic: slug })
        : S.api('DELETE', '/v1/me/subscriptions/' + encodeURIComponent(slug));
      call.then(function (r) { if (r.ok) show(on); }).then(function () { button.disabled = false; });
    });
  }

  function topicBoxes() {
    var box = $('[data-topics]');
    if (!box) return;
    var status = $('[data-topics-status]');
    var inputs = $all('input[name="topic"]', box);
    S.api('GET', '/v1/me/subscriptions').then(function (r) { return r.json(); }).then(function (body) {
      inputs.forEach(function (input) { input.checked = body.topics.indexOf(input.value) >= 0; });
    });
    inputs.forEach(function (input) {
      input.addEventListener('change', function () {
        var label = input.labels && input.labels[0] ? input.labels[0].firstChild.textContent.trim() : input.value;
        var call = input.checked
          ? S.api('POST', '/v1/me/subscriptions', { topic: input.value })
          : S.api('DELETE', '/v1/me/subscriptions/' + encodeURIComponent(input.value));
        call.then(function (r) {
          if (!r.ok) { input.checked = !input.checked; return problem(r).then(function (t) { say(status, t); }); }
          say(status, (input.checked ? 'Following ' : 'No longer following ') + label + '.');
        });
      });
    });
  }

  function preferencesForm() {
    var form = $('form[data-form="preferences"]');
    if (!form) return;
    var status = $('[data-prefs-status]');
    var f = form.elements;
    var syncQuiet = function () { f.quiet_start.disabled = f.quiet_end.disabled = !f.quiet.checked; };
    f.quiet.addEventListener('change', syncQuiet);
    S.api('GET', '/v1/me/preferences').then(function (r) { return r.json(); }).then(function (prefs) {
      var detected = S.timezone();
      // A reader who never chose keeps the server's default (UTC): offer the detected zone.
      f.timezone.value = prefs.timezone && prefs.timezone !== 'UTC' ? prefs.timezone : detected;
      f.quiet.checked = !!prefs.quiet_hours;
      if (prefs.quiet_hours) { f.quiet_start.value = prefs.quiet_hours.start; f.quiet_end.value = prefs.quiet_hours.end; }
      f.max_alerts_per_day.value = prefs.max_alerts_per_day;
      syncQuiet();
      say(status, 'Time zone detected: ' + detected + '.');
    });
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var body = {
        timezone: f.timezone.value.trim(),
        quiet_hours: f.quiet.checked ? { start: f.quiet_start.value, end: f.quiet_end.value } : null,
        max_alerts_per_day: parseInt(f.max_alerts_per_day.value, 10)
      };
      S.api('PUT', '/v1/me/preferences', body).then(function (r) {
        if (!r.ok) return problem(r).then(function (t) { say(status, 'Not saved: ' + t); });
        say(status, 'Saved.');
      });
    });
  }

  /* ---- Inbox ----------------------------------------------------------------------------- */

  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  function alertHref(item) {
    if (item.article_id && UUID.test(item.article_id)) return '/articles/' + item.article_id;
    if (item.story_id && UUID.test(item.story_id)) return '/stories/' + item.story_id;
    return '/';
  }

  function relative(iso) {
    var seconds = (Date.now() - Date.parse(iso)) / 1000;
    var unit = function (n, name) { n = Math.floor(n); return n + ' ' + name + (n === 1 ? '' : 's') + ' ago'; };
    if (seconds < 60) return 'just now';
    if (seconds < 3600) return unit(seconds / 60, 'minute');
    if (seconds < 86400) return unit(seconds / 3600, 'hour');
    return unit(seconds / 86400, 'day');
  }

  function inbox() {
    var list = $('[data-inbox]');
    if (!list) return;
    var status = $('[data-inbox-status]');
    var more = $('[data-inbox-more]');
    var cursor = null;
    var load = function () {
      var path = '/v1/me/alerts?limit=20' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
      return S.api('GET', path).then(function (r) {
        if (!r.ok) return problem(r).then(function (t) { say(status, t); });
        return r.json().then(function (body) {
          body.items.forEach(function (item) {
            var li = document.createElement('li');
            var article = document.createElement('article');
            article.className = 'headline';
            article.dataset.alert = item.id;
            var h = document.createElement('h2');
            h.className = 'h3';
            var a = document.createElement('a');
            a.href = alertHref(item);
            a.textContent = item.title;
            h.appendChild(a);
            var by = document.createElement('p');
            by.className = 'byline';
            var time = document.createElement('time');
            time.dateTime = item.sent_at;
            time.title = new Date(item.sent_at).toUTCString();
            time.textContent = relative(item.sent_at);
            by.appendChild(time);
            if (item.opened) {
              var opened = document.createElement('span');
              opened.className = 'opened';
              opened.textContent = ' · opened';
              by.appendChild(opened);
            }
            var p = document.createElement('p');
            p.className = 'summary';
            p.textContent = item.body;
            article.appendChild(h);
            article.appendChild(by);
            article.appendChild(p);
            li.appendChild(article);
            list.appendChild(li);
          });
          cursor = body.next_cursor;
          more.hidden = !cursor;
          var count = list.children.length;
          say(status, count ? (count === 1 ? '1 alert.' : count + ' alerts.') : 'No alerts yet. Follow a topic and turn alerts on to get breaking news.');
        });
      });
    };
    more.addEventListener('click', load);
    load();
  }

  /* ---- An alert while the site is open: the worker tells the page too -------------------- */

  function liveAlerts() {
    var box = $('[data-live-alert]');
    if (!box || !('serviceWorker' in navigator)) return;
    var link = $('[data-live-alert-link]', box);
    $('[data-live-alert-close]', box).addEventListener('click', function () { box.hidden = true; });
    navigator.serviceWorker.addEventListener('message', function (event) {
      var alert = event.data;
      if (!alert || alert.type !== 'herald-alert' || typeof alert.title !== 'string') return;
      link.textContent = alert.title;
      link.href = typeof alert.url === 'string' && alert.url.charAt(0) === '/' && alert.url.charAt(1) !== '/' ? alert.url : '/alerts';
      box.hidden = false;
    });
    // Deliver messages now rather than at the end of parsing.
    if (navigator.serviceWorker.startMessages) navigator.serviceWorker.startMessages();
  }

  /* ---- Install --------------------------------------------------------------------------- */

  function install() {
    var button = $('[data-install]');
    var hint = $('[data-ios-hint]');
    if (hint && isIos() && !isStandalone()) hint.hidden = false;
    if (!button) return;
    var deferred = null;
    window.addEventListener('beforeinstallprompt', function (event) {
      event.preventDefault();
      deferred = event;
      button.hidden = false;
    });
    window.addEventListener('appinstalled', function () { button.hidden = true; deferred = null; });
    button.addEventListener('click', function () {
      if (!deferred) return;
      deferred.prompt();
      deferred.userChoice.then(function () { deferred = null; button.hidden = true; });
    });
  }

  /* ---- Start ------------------------------------------------------------------------------ */

  install();
  liveAlerts();
  reveal();
  // An anonymous reader on first visit: no sign-up wall.
  S.session().then(function (session) {
    showAccount(session);
    if (page === 'account') accountForms();
    if (page === 'following') { setupPushButton(); topicBoxes(); preferencesForm(); }
    if (page === 'topic') followButton();
    if (page === 'alerts') inbox();
    return Promise.all([heal(), S.flushOpens()]);
  }).catch(function (err) {
    console.warn('Herald could not start a session', err);
  });
})();
