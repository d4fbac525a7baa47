/* Herald reader: the reader's session and the /v1 calls made with it.
 *
 * Loaded by every page and imported by the service worker (/sw.js), so both see one session.
 *
 * Where the tokens live, and why: IndexedDB (database "herald", store "kv"), not
 * localStorage and not sessionStorage.
 * - The service worker must report a tapped alert (POST /v1/alerts/{id}/opened needs the
 *   reader's bearer token) while no page may be open; workers can read IndexedDB, never Web
 *   Storage.
 * - A reader starts anonymous and follows topics before signing up; a session that ended with
 *   the tab (sessionStorage) would make a new, empty reader on every visit.
 * - The risk of script-readable tokens is cross-site scripting; the pages allow no inline script
 *   and nothing from another origin (strict CSP), and every feed text is escaped on the server.
 *   The console, which can send alerts to everyone, keeps its refresh token out of scripts.
 * Refresh tokens rotate on every use and a replayed one revokes the session, so page and worker
 * refresh under one Web Lock: only one of them spends the refresh token.
 */
(function (scope) {
  'use strict';

  var DB_NAME = 'herald';
  var STORE = 'kv';
  var SESSION = 'session';
  var PUSH = 'push';
  // Refresh a little before the access token expires.
  var SKEW_MS = 30 * 1000;

  function open() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore(STORE); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function tx(mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(STORE, mode);
        var result = work(t.objectStore(STORE));
        t.oncomplete = function () { db.close(); resolve(result && 'result' in result ? result.result : undefined); };
        t.onerror = function () { db.close(); reject(t.error); };
        t.onabort = function () { db.close(); reject(t.error); };
      });
    });
  }

  function get(key) { return tx('readonly', function (s) { return s.get(key); }); }
  function set(key, value) { return tx('readwrite', function (s) { s.put(value, key); }); }
  function remove(key) { return tx('readwrite', function (s) { s.delete(key); }); }

  function locked(work) {
    if (scope.navigator && scope.navigator.locks) {
      return scope.navigator.locks.request('herald-session', work);
    }
    return work();
  }

  function postJson(path, body, token) {
    var headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (token) headers.authorization = 'Bearer ' + token;
    return fetch(path, { method: 'POST', headers: headers, body: JSON.stringify(body || {}), credentials: 'omit' });
  }

  function save(tokens) {
    var session = {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      expires_at: Date.now() + (tokens.expires_in || 0) * 1000 - SKEW_MS,
      user: tokens.user
    };
    return set(SESSION, session).then(function () { return session; });
  }

  /* The reader's live session: refreshed when its access token is due, and (when `create`)
   * a new anonymous reader when there is none. Resolves to null when there is none. */
  function session(options) {
    var create = !options || options.create !== false;
    return locked(function () {
      return get(SESSION).then(function (current) {
        if (current && current.expires_at > Date.now()) return current;
        var renewed = current
          ? postJson('/v1/auth/refresh', { refresh_token: current.refresh_token }).then(function (r) {
              if (r.ok) return r.json().then(save);
              if (r.status === 400 || r.status === 401 || r.status === 403 || r.status === 404) {
                return remove(SESSION).then(function () { return null; });
              }
              throw new Error('refresh failed: ' + r.status);
            })
          : Promise.resolve(null);
        return renewed.then(function (s) {
          if (s || !create) return s;
          return postJson('/v1/auth/anonymous', {}).then(function (r) {
            if (!r.ok) throw new Error('could not start a session: ' + r.status);
            return r.json().then(save);
          });
        });
      });
    });
  }

  /* Forgets an access token the server refused, so the next call refreshes. */
  function expire(token) {
    return locked(function () {
      return get(SESSION).then(function (current) {
        if (current && current.access_token === token) {
          current.expires_at = 0;
          return set(SESSION, current);
        }
      });
    });
  }

  /* A /v1 call as the reader: resolves to the Response, or null when there is no session and
   * `create` is false. A 401 (token revoked early) refreshes once and retries. */
  function api(method, path, body, options) {
    var attempt = function (retry) {
      return session(options).then(function (s) {
        if (!s) return null;
        var headers = { authorization: 'Bearer ' + s.access_token, accept: 'application/json' };
        var init = { method: method, headers: headers, credentials: 'omit' };
        if (body !== undefined) {
          headers['content-type'] = 'application/json';
          init.body = JSON.stringify(body);
        }
        return fetch(path, init).then(function (r) {
          if (r.status === 401 && retry) return expire(s.access_token).then(function () { return attempt(false); });
          return r;
        });
      });
    };
    return attempt(true);
  }

  function base64UrlToBytes(text) {
    var padded = (text + '==='.slice((text.length + 3) % 4)).replace(/-/g, '+').replace(/_/g, '/');
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function bytesToBase64Url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = '';
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function vapidKey() {
    return fetch('/v1/push/vapid-public-key', { credentials: 'omit' }).then(function (r) {
      if (!r.ok) throw new Error('no VAPID key: ' + r.status);
      return r.json();
    }).then(function (body) { return body.public_key; });
  }

  function timezone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch (e) { return 'UTC'; }
  }

  /* Registers a push subscription as this reader's device (POST /v1/devices, idempotent on the
   * endpoint) and remembers what was registered, so a page can tell when it must heal. */
  function registerDevice(subscription, key) {
    var json = subscription.toJSON();
    var device = {
      platform: 'web',
      subscription: { endpoint: json.endpoint, keys: json.keys },
      timezone: timezone()
    };
    if (scope.navigator && scope.navigator.language) device.locale = scope.navigator.language;
    return api('POST', '/v1/devices', device).then(function (r) {
      if (!r || !r.ok) throw new Error('could not register this browser for alerts: ' + (r && r.status));
      return r.json();
    }).then(function (registered) {
      return session().then(function (s) {
        var record = { endpoint: json.endpoint, key: key, device_id: registered.id, user_id: s && s.user && s.user.id };
        return set(PUSH, record).then(function () { return record; });
      });
    });
  }

  var OPENS = 'pending-opens';

  /* Reports a tapped alert; when offline (or the server is down) it is kept and sent on the
   * next page load, so an open still counts. */
  function reportOpened(alertId) {
    return api('POST', '/v1/alerts/' + encodeURIComponent(alertId) + '/opened', undefined, { create: false })
      .then(function (r) {
        if (r && r.status >= 500) throw new Error('server error ' + r.status);
      })
      .catch(function () {
        return get(OPENS).then(function (list) {
          list = list || [];
          if (list.indexOf(alertId) < 0) list.push(alertId);
          return set(OPENS, list.slice(-50));
        });
      });
  }

  function flushOpens() {
    return get(OPENS).then(function (list) {
      if (!list || !list.length) return;
      return remove(OPENS).then(function () { return Promise.all(list.map(reportOpened)); });
    });
  }

  scope.HeraldSession = {
    reportOpened: reportOpened,
    flushOpens: flushOpens,
    get: get,
    set: set,
    remove: remove,
    session: session,
    save: save,
    api: api,
    postJson: postJson,
    clear: function () { return locked(function () { return remove(SESSION); }); },
    vapidKey: vapidKey,
    registerDevice: registerDevice,
    base64UrlToBytes: base64UrlToBytes,
    bytesToBase64Url: bytesToBase64Url,
    timezone: timezone,
    PUSH: PUSH
  };
})(self);
