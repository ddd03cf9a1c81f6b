#!/usr/bin/env node
// The offline-first scenarios of the /demo page (issue 28), in Debian's chromium with a fake
// microphone: the app shell without the server, a browser killed while recording, the page behind
// a proxy prefix, the token and its 401, and what stays in the browser. Same contract as
// run-demo.mjs: ONE JSON result line; lines {"ask": ...} ask the test to stop or start the server
// and wait for "done" on stdin.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  REC, ask, facts, guard, inFreshBrowser, killOwned, launchOwned, openPage, readOptions, recordFor, runScenario,
  shot, sleep, startRecording, typeToken, waitStatus
} from './demo-lib.mjs'

const opts = readOptions()
const origin = new URL(opts.origin).origin
const TOKEN_KEY = 'tusd-py-demo:token'
const DAY_MS = 24 * 60 * 60 * 1000

const ready = page => page.waitForSelector('body[data-ready=true]')

/** The first recording's audio, decoded by the browser (its length in seconds), and played for a moment. */
async function playback (page) {
  return page.evaluate(async () => {
    const el = document.querySelector('[data-testid=recording]')
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open('tusd-py-demo')
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
    const blob = await new Promise(resolve => { db.transaction('audio').objectStore('audio').get(el.dataset.id).onsuccess = e => resolve(e.target.result) })
    db.close()
    const decoded = await new AudioContext().decodeAudioData(await blob.arrayBuffer())
    const audio = el.querySelector('audio')
    await audio.play()
    await new Promise(resolve => {
      const check = () => { if (audio.currentTime > 0.5) { audio.removeEventListener('timeupdate', check); resolve() } }
      audio.addEventListener('timeupdate', check)
    })
    audio.pause()
    return { decodedSeconds: decoded.duration, playedSeconds: audio.currentTime }
  })
}

/** What the page keeps of the token: where its value is found in this origin's storage. */
function tokenStorage (page, token) {
  return page.evaluate(({ token, key }) => ({
    localKeys: Object.keys(localStorage).filter(k => (localStorage.getItem(k) || '').includes(token)),
    oldLocalKey: localStorage.getItem(key),
    session: sessionStorage.getItem(key) === token
  }), { token, key: TOKEN_KEY })
}

const scenarios = {
  /** Visit once; the server stops; the page reloads from the service worker, records, and uploads once it is back. */
  async 'offline-shell' (page, result, context) {
    await openPage(opts, page)
    await page.evaluate(() => navigator.serviceWorker.ready)
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null)
    const cdp = await context.newCDPSession(page)
    result.installabilityErrors = (await cdp.send('Page.getInstallabilityErrors')).installabilityErrors
    const manifest = await cdp.send('Page.getAppManifest')
    result.manifest = { url: manifest.url, errors: manifest.errors }
    await ask('stop-server')
    const reloaded = await page.reload()
    result.reloadFromServiceWorker = reloaded.fromServiceWorker()
    await ready(page)
    result.tokenKept = (await page.inputValue('[data-testid=token]')) === opts.token
    await recordFor(page, 3000)
    await page.waitForSelector(`${REC}[data-retry-at]`, { timeout: 15000 })
    await shot(opts, page, 'queued')
    result.queued = await facts(page)
    await ask('start-server')
    const back = Date.now()
    await waitStatus(page, 'completed', 60000)
    result.secondsToComplete = (Date.now() - back) / 1000
    result.completed = await facts(page)
  },

  /** Behind nginx under /uploads/: every URL the page uses keeps the prefix. */
  async prefix (page, result, context) {
    const paths = new Set()
    context.on('request', request => {
      const url = new URL(request.url())
      if (url.protocol.startsWith('http')) paths.add(`${request.method()} ${url.pathname}`)
    })
    await page.goto(`${origin}/uploads/demo`) // without the slash: the server's redirect is relative
    result.landedAt = page.url()
    await ready(page)
    await typeToken(page, opts.token)
    result.serviceWorkerScope = await page.evaluate(() => navigator.serviceWorker.ready.then(r => r.scope))
    await recordFor(page, 2000)
    await waitStatus(page, 'completed')
    result.completed = await facts(page)
    result.paths = [...paths]
  },

  /** No token in localStorage; a refused token is "sign in again", not a failed upload. */
  async 'sign-in' (page, result, context) {
    const statuses = []
    page.on('response', response => statuses.push(response.status()))
    await page.goto(`${origin}/demo/`)
    await ready(page)
    result.inputType = await page.getAttribute('[data-testid=token]', 'type')
    result.noToken = await page.locator('[data-testid=signin]').innerText()
    await page.evaluate(key => localStorage.setItem(key, 'left by an older version'), TOKEN_KEY)
    await page.reload()
    await ready(page)
    result.oldTokenAfterReload = await page.evaluate(key => localStorage.getItem(key), TOKEN_KEY)
    await typeToken(page, opts.badToken)
    await recordFor(page, 1500)
    await page.waitForSelector('[data-testid=signin]:not([hidden])', { timeout: 15000 })
    result.refusedText = await page.locator('[data-testid=signin]').innerText()
    result.refused = await facts(page)
    result.refusedRetryAt = await page.getAttribute(REC, 'data-retry-at')
    result.responses401 = statuses.filter(s => s === 401).length
    await typeToken(page, opts.expiredToken)
    await page.waitForFunction(() => document.querySelector('[data-testid=signin]').innerText.includes('expired') &&
      document.querySelector('[data-testid=note]').innerText.includes('sign in again'), null, { timeout: 10000 })
    result.expiredText = await page.locator('[data-testid=signin]').innerText()
    result.responses401AfterExpired = statuses.filter(s => s === 401).length
    await shot(opts, page, 'sign-in-again')
    await typeToken(page, opts.token)
    await waitStatus(page, 'completed')
    result.signInHidden = await page.locator('[data-testid=signin]').isHidden()
    result.completed = await facts(page)
    result.storage = await tokenStorage(page, opts.token)
  },

  /** Usage and quota; retention of completed copies; old failed ones offered for clean-up. */
  async retention (page, result) {
    await openPage(opts, page)
    result.retentionDefault = await page.inputValue('[data-testid=retention]')
    await recordFor(page, 2000)
    await waitStatus(page, 'completed')
    await page.waitForSelector('[data-testid=analysis]:not([hidden])')
    await shot(opts, page, 'completed')
    result.kept = await facts(page)
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=storage]').dataset.usage) > 0)
    result.storage = await page.evaluate(async () => {
      const el = document.querySelector('[data-testid=storage]')
      const browser = await navigator.storage.estimate()
      return { ...el.dataset, text: el.innerText, browserQuota: browser.quota, browserPersisted: await navigator.storage.persisted() }
    })
    const now = Date.now()
    await page.evaluate(forge, [
      { id: 'old-completed', status: 'completed', createdAt: now - 3 * DAY_MS, completedAt: now - 2 * DAY_MS },
      { id: 'new-completed', status: 'completed', createdAt: now - 2 * DAY_MS, completedAt: now - 60 * 60 * 1000 },
      { id: 'old-failed', status: 'failed', createdAt: now - 9 * DAY_MS, failedAt: now - 8 * DAY_MS, uploadError: 'HTTP 413: too large' },
      { id: 'new-failed', status: 'failed', createdAt: now - 9 * DAY_MS, failedAt: now - DAY_MS, uploadError: 'HTTP 413: too large' }
    ])
    await page.selectOption('[data-testid=retention]', String(DAY_MS))
    await page.reload()
    await ready(page)
    result.retentionAfterReload = await page.inputValue('[data-testid=retention]')
    await page.waitForSelector('[data-testid=cleanup]:not([hidden])')
    result.forged = {}
    for (const id of ['old-completed', 'new-completed', 'old-failed', 'new-failed']) result.forged[id] = await facts(page, id)
    result.offer = await page.evaluate(() => ({ count: document.querySelector('[data-testid=cleanup]').dataset.count, text: document.querySelector('[data-testid=cleanup]').innerText }))
    await shot(opts, page, 'cleanup-offered')
    await page.click('[data-testid=cleanup-button]')
    await page.waitForSelector(`${REC}[data-id="old-failed"]`, { state: 'detached' })
    result.afterCleanup = await page.evaluate(() => [...document.querySelectorAll('[data-testid=recording]')].map(el => el.dataset.id))
    await page.waitForSelector('[data-testid=cleanup]', { state: 'hidden' }) // nothing left to offer
    // "Until the server has completed it": the real recording's local copy goes, the player uses the server's.
    const id = result.kept.id
    await page.selectOption('[data-testid=retention]', '0')
    await page.waitForSelector(`${REC}[data-id="${id}"][data-local=no]`)
    await page.waitForFunction(id => document.querySelector(`[data-id="${id}"] audio`).src.startsWith('http'), id)
    result.serverCopy = await page.evaluate(async id => {
      const audio = document.querySelector(`[data-id="${id}"] audio`)
      if (audio.readyState < 1) await new Promise((resolve, reject) => { audio.onloadedmetadata = resolve; audio.onerror = () => reject(new Error('the server copy does not load')) })
      const body = await (await fetch(audio.src)).arrayBuffer()
      const digest = await crypto.subtle.digest('SHA-256', body)
      return { src: audio.src, sha256: [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('') }
    }, id)
    result.dropped = await facts(page, id)
  }
}

/** Writes recordings into the page's IndexedDB as if they had been there for days (in the page). */
async function forge (records) {
  const db = await new Promise((resolve, reject) => {
    const req = indexedDB.open('tusd-py-demo')
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
  const tx = db.transaction(['recordings', 'audio'], 'readwrite')
  for (const rec of records) {
    const blob = new Blob([`forged ${rec.id}`], { type: 'audio/webm' })
    tx.objectStore('recordings').put({ name: `${rec.id}.webm`, type: blob.type, size: blob.size, source: 'file', uploadUrl: null, ...rec })
    tx.objectStore('audio').put(blob, rec.id)
  }
  await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error) })
  db.close()
}

/** Record, SIGKILL the browser mid-take, relaunch on the same profile: the slices written are a recording. */
async function crash (result) {
  const profile = mkdtempSync(join(tmpdir(), 'tusd-py-chromium-profile-'))
  let owned = null
  try {
    owned = await launchOwned(profile)
    guard(owned.context, origin, result)
    if (opts.only) {
      // A browser that records this container only (as Safari records MP4 only): the page must pick it.
      await owned.context.addInitScript(only => {
        const supported = MediaRecorder.isTypeSupported.bind(MediaRecorder)
        MediaRecorder.isTypeSupported = type => type.startsWith(only) && supported(type)
      }, opts.only)
    }
    let page = owned.context.pages()[0] || await owned.context.newPage()
    await openPage(opts, page)
    await startRecording(page)
    const started = Date.now()
    await sleep(opts.recordMs)
    result.recordedMs = Date.now() - started
    await killOwned(owned)
    owned = null

    owned = await launchOwned(profile)
    guard(owned.context, origin, result)
    page = owned.context.pages()[0] || await owned.context.newPage()
    await page.goto(`${origin}/demo/`)
    await ready(page)
    await page.waitForSelector(`${REC}[data-recovered]`, { timeout: 10000 })
    result.tokenAfterRelaunch = await page.inputValue('[data-testid=token]')
    result.signInShown = await page.locator('[data-testid=signin]').isVisible()
    result.recovered = await facts(page)
    result.leftoverTakes = await page.evaluate(async () => {
      const db = await new Promise(resolve => { indexedDB.open('tusd-py-demo').onsuccess = e => resolve(e.target.result) })
      const count = store => new Promise(resolve => { db.transaction(store).objectStore(store).count().onsuccess = e => resolve(e.target.result) })
      const counts = { takes: await count('takes'), slices: await count('slices') }
      db.close()
      return counts
    })
    result.playback = await playback(page)
    await shot(opts, page, 'recovered')
    await typeToken(page, opts.token)
    await waitStatus(page, 'completed', 40000)
    result.completed = await facts(page)
  } finally {
    if (owned) await killOwned(owned)
    rmSync(profile, { recursive: true, force: true })
  }
}

runScenario(opts, result => opts.scenario === 'crash'
  ? crash(result)
  : inFreshBrowser(opts, result, (page, result, context) => scenarios[opts.scenario](page, result, context)))
