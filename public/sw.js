// Transfer Lab's service worker: keeps a copy of the app and of every file it downloads from
// its own origin, so that after the first visit the page and its lessons open without a
// network. Network first: while online the student always gets the current files; the kept
// copy answers only when the network fails. Nothing is sent anywhere.

// Same name as OFFLINE_CACHE in app/src/worker/fetch.rs.
const CACHE = 'transfer-lab-offline-v1';

// The app's own files, named by the build with content hashes: read them out of the page and
// the worker loader at install time, so the first visit is enough to work offline.
async function appFiles() {
  const files = new Set(['./', './index.html', './worker_loader.js']);
  for (const page of ['./', './worker_loader.js']) {
    try {
      const text = await (await fetch(page, { cache: 'no-store' })).text();
      for (const match of text.matchAll(/["'(]([^"'()\s]+\.(?:js|wasm|css))["')]/g)) {
        files.add(match[1]);
      }
    } catch (error) {
      console.warn(`service worker: could not read ${page}: ${error}`);
    }
  }
  return [...files].filter((file) => new URL(file, self.location).origin === self.location.origin);
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    for (const file of await appFiles()) {
      try {
        await cache.add(file);
      } catch (error) {
        console.warn(`service worker: no offline copy of ${file}: ${error}`);
      }
    }
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

// The page sends the addresses it loaded before this worker controlled it.
self.addEventListener('message', (event) => {
  const urls = event.data?.cacheUrls;
  if (!Array.isArray(urls)) return;
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    for (const url of urls) {
      if (new URL(url).origin !== self.location.origin || (await cache.match(url))) continue;
      try {
        await cache.add(url);
      } catch (error) {
        console.warn(`service worker: no offline copy of ${url}: ${error}`);
      }
    }
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    try {
      const response = await fetch(request);
      if (response.ok && response.status === 200) {
        const copy = response.clone();
        event.waitUntil(caches.open(CACHE).then((cache) => cache.put(request, copy)));
      }
      return response;
    } catch (error) {
      const cache = await caches.open(CACHE);
      // A page address with other query options is still the same page.
      const kept = (await cache.match(request)) ??
        (request.mode === 'navigate' ? await cache.match('./', { ignoreSearch: true }) : undefined);
      if (kept) return kept;
      throw error;
    }
  })());
});
