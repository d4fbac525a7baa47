/* Herald reader's service worker, served at /sw.js (scope /, no-cache). The server fills in
 * CONFIG: the version, the files to pre-cache and the hashed URLs of session.js and icons. */
'use strict';

var CONFIG = /*HERALD_CONFIG*/{};
var SHELL = 'herald-shell-' + CONFIG.version;
var PAGES = 'herald-pages';
// How many pages the reader read last are kept for offline reading.
var MAX_PAGES = 30;
var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

importScripts(CONFIG.session);
var S = self.HeraldSession;

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(SHELL).then(function (cache) { return cache.addAll(CONFIG.precache); }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf('herald-shell-') === 0 && n !== SHELL; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

/* ---- Offline: the app shell and the last pages read ------------------------------------- */

function trimPages(cache) {
  return cache.keys().then(function (keys) {
    var extra = keys.length - MAX_PAGES;
    return Promise.all(keys.slice(0, Math.max(0, extra)).map(function (k) { return cache.delete(k); }));
  });
}

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET') return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.indexOf('/assets/') === 0) {
    // Hashed assets never change: the cache first.
    event.respondWith(caches.match(request).then(function (hit) { return hit || fetch(request); }));
    return;
  }
  if (request.mode !== 'navigate') return;
  // Pages: the network first (fresh news); a copy is kept, and answers only when offline.
  event.respondWith(fetch(request).then(function (response) {
    if (response.ok && response.type === 'basic') {
      var copy = response.clone();
      event.waitUntil(caches.open(PAGES).then(function (cache) {
        return cache.delete(request, { ignoreSearch: false }).then(function () { return cache.put(request, copy); })
          .then(function () { return trimPages(cache); });
      }));
    }
    return response;
  }, function () {
    return caches.match(request, { cacheName: PAGES }).then(function (hit) {
      return hit || caches.match(CONFIG.offline);
    });
  }));
});

/* ---- Push: one alert, one notification per story ----------------------------------------- */

function text(value, max) {
  return typeof value === 'string' ? value.slice(0, max) : '';
}

/* The page an alert opens: ours, never an address from the payload. */
function target(alert) {
  if (UUID.test(alert.article_id || '')) return '/articles/' + alert.article_id;
  if (UUID.test(alert.story_id || '')) return '/stories/' + alert.story_id;
  return '/alerts';
}

/* The SPEC §4 envelope; anything else (an unknown kind, plain text) still shows. */
function parse(data) {
  if (!data) return {};
  try {
    var value = data.json();
    return value && typeof value === 'object' ? value : { body: String(value) };
  } catch (e) {
    return { body: data.text() };
  }
}

function showAlert(alert) {
  var title = text(alert.title, 200) || 'Herald';
  // One notification per story (the alert's own id without one): a later version of the alert,
  // a retraction, or another alert on the story replaces the one shown.
  var tag = UUID.test(alert.tag || '') ? alert.tag
    : UUID.test(alert.story_id || '') ? alert.story_id : (text(alert.alert_id, 64) || undefined);
  var quiet = alert.silent === true || alert.retracted === true;
  return self.registration.getNotifications(tag ? { tag: tag } : undefined).then(function (shown) {
    // A different alert on the story alerts again; a new version of the same one (an update, a
    // correction, a retraction) replaces it quietly.
    var renotify = !quiet && !!tag && shown.some(function (n) { return n.data && n.data.alert_id !== alert.alert_id; });
    var options = {
      body: text(alert.body, 500),
      icon: CONFIG.icon,
      badge: CONFIG.badge,
      data: {
        alert_id: text(alert.alert_id, 64),
        url: target(alert),
        article_id: text(alert.article_id, 64),
        story_id: text(alert.story_id, 64)
      },
      timestamp: Date.parse(alert.sent_at) || Date.now(),
      silent: quiet
    };
    if (alert.retracted === true) options.data.url = '/alerts';
    if (typeof alert.image_url === 'string' && /^https:\/\//.test(alert.image_url) && !alert.retracted) {
      options.image = alert.image_url;
    }
    if (tag) { options.tag = tag; options.renotify = renotify; }
    return self.registration.showNotification(title, options).then(function () {
      // An open tab shows it too, as a banner.
      return self.clients.matchAll({ type: 'window' });
    }).then(function (windows) {
      windows.forEach(function (w) {
        w.postMessage({ type: 'herald-alert', title: title, url: options.data.url });
      });
    });
  });
}

self.addEventListener('push', function (event) {
  event.waitUntil(showAlert(parse(event.data)));
});

/* ---- A tap: focus, else navigate, else open; and report it ------------------------------- */

function openPage(path) {
  var url = new URL(path, self.location.origin).href;
  return self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (windows) {
    var exact = windows.filter(function (w) { return w.url === url; })[0];
    if (exact) return exact.focus();
    var focused = windows.filter(function (w) { return w.focused; })[0] || windows[0];
    if (focused && 'navigate' in focused) {
      return focused.navigate(url).then(function (w) {
        var client = w || focused;
        return client.focus().catch(function () { return client; });
      }).catch(function () { return self.clients.openWindow(url); });
    }
    return self.clients.openWindow(url);
  });
}

function reportOpened(alertId) {
  if (!UUID.test(alertId || '')) return Promise.resolve();
  return S.reportOpened(alertId);
}

function onNotificationClick(event) {
  var data = event.notification.data || {};
  event.notification.close();
  event.waitUntil(Promise.all([openPage(data.url || '/'), reportOpened(data.alert_id)]));
}
self.addEventListener('notificationclick', onNotificationClick);

/* ---- The push service changed the subscription: register the new one -------------------- */

function onSubscriptionChange(event) {
  var renewed = event.newSubscription
    ? Promise.resolve(event.newSubscription)
    : S.vapidKey().then(function (key) {
        return self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: S.base64UrlToBytes(key) });
      });
  var done = Promise.all([renewed, S.vapidKey()]).then(function (both) {
    return S.registerDevice(both[0], both[1]);
  });
  event.waitUntil(done);
  return done;
}
self.addEventListener('pushsubscriptionchange', onSubscriptionChange);

// For tests, which cannot make a push service change a subscription.
self.heraldOnSubscriptionChange = onSubscriptionChange;
