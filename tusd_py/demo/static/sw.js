// The recorder's service worker: it keeps the app shell, so the page opens without the server.
//
// The shell (the page, its stylesheet, its bundle, its config, manifest and icon) is cached on the
// first visit. Each later load asks the server first, with a short timeout, and falls back to the
// cached copy when there is no answer: a reachable server always gives the current build (the bundle
// and the server must agree), an unreachable one the last build seen. Uploads and API calls are not
// touched (no respondWith): they go to the network, and the page's queue handles their failures.
// Every URL is relative to this script, so the shell is the same behind a proxy prefix.

const CACHE = 'tusd-py-demo-shell-v1'
const SHELL = ['./', 'app.css', 'build/app.js', 'config.json', 'manifest.webmanifest', 'icon.svg']
const NETWORK_TIMEOUT_MS = 3000

const shellUrls = () => new Set(SHELL.map(path => new URL(path, self.registration.scope).href))

self.addEventListener('install', event => {
  event.waitUntil(caches.open(CACHE).then(cache => cache.addAll(SHELL)).then(() => self.skipWaiting()))
})

self.addEventListener('activate', event => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name)
    await self.clients.claim() // the first visit's page is controlled without a reload
  })())
})

/** The network's answer within the timeout, else the cached copy; the cache follows the network. */
async function networkFirst (key) {
  const cache = await caches.open(CACHE)
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), NETWORK_TIMEOUT_MS)
  try {
    // A fresh request: a navigation's own cannot be re-sent with options.
    const response = await fetch(key, { signal: controller.signal, cache: 'no-store' })
    if (response.ok) await cache.put(key, response.clone())
    return response
  } catch (err) {
    const cached = await cache.match(key)
    if (cached) return cached
    throw err
  } finally {
    clearTimeout(timer)
  }
}

self.addEventListener('fetch', event => {
  const request = event.request
  if (request.method !== 'GET') return
  const url = new URL(request.url)
  url.search = ''
  url.hash = ''
  const key = url.pathname.endsWith('/index.html') ? new URL('./', url).href : url.href
  if (request.mode === 'navigate' ? key === new URL('./', self.registration.scope).href : shellUrls().has(key)) {
    event.respondWith(networkFirst(key))
  }
})
