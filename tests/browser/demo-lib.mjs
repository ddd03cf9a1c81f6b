// What the /demo scenario runners share: launching Debian's chromium with a fake microphone, the
// guard against requests leaving the origin, and reading the page's state (its data-* contract and
// the audio it keeps in IndexedDB). run-demo.mjs and run-offline.mjs import it.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

export const REC = '[data-testid=recording]'
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required'
]
export const VIEWPORT = { width: 390, height: 844 } // a phone-sized window

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

export function readOptions () {
  return JSON.parse(process.argv[process.argv.indexOf('--json') + 1])
}

export async function shot (opts, page, name) {
  await page.screenshot({ path: join(opts.artifacts, `${opts.scenario}-${name}.png`), fullPage: true })
}

export async function waitStatus (page, status, timeout = 30000) {
  await page.waitForSelector(`${REC}[data-status=${status}]`, { timeout })
}

/** Starts recording; resolves once the recorder runs (the Stop button is enabled). */
export async function startRecording (page) {
  await page.click('[data-testid=record]')
  await page.waitForSelector('[data-testid=stop]:not([disabled])')
}

export async function recordFor (page, ms) {
  const before = await page.locator(REC).count()
  await startRecording(page)
  await sleep(ms)
  await page.click('[data-testid=stop]')
  await page.waitForFunction(n => document.querySelectorAll('[data-testid=recording]').length > n, before)
}

export async function typeToken (page, token) {
  await page.fill('[data-testid=token]', token || '')
  await page.locator('[data-testid=token]').dispatchEvent('change')
}

/** Opens the page at `url` (default: the origin's /demo/) and types the token. */
export async function openPage (opts, page, url = `${opts.origin}/demo/`) {
  await page.goto(url)
  await page.waitForSelector('body[data-ready=true]')
  await typeToken(page, opts.token)
}

/**
 * What the page shows of a recording (the first by default, or the one of this id), and the SHA-256
 * of the audio it keeps in IndexedDB (null fields when it keeps none).
 */
export async function facts (page, which = 0) {
  return page.evaluate(async which => {
    const el = typeof which === 'number'
      ? document.querySelectorAll('[data-testid=recording]')[which]
      : document.querySelector(`[data-testid=recording][data-id="${which}"]`)
    const id = el.dataset.id
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open('tusd-py-demo')
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
    const blob = await new Promise((resolve, reject) => {
      const req = db.transaction('audio').objectStore('audio').get(id)
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
    db.close()
    const digest = blob ? await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()) : null
    return {
      id,
      status: el.dataset.status,
      local: el.dataset.local,
      uploadUrl: el.dataset.uploadUrl || null,
      recoveredMs: el.dataset.recovered ? Number(el.dataset.recovered) : null,
      count: document.querySelectorAll('[data-testid=recording]').length,
      note: el.querySelector('[data-testid=note]').innerText,
      analysisText: el.querySelector('[data-testid=analysis]').innerText,
      blobType: blob ? blob.type : null,
      blobSize: blob ? blob.size : null,
      blobSha256: digest ? [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('') : null
    }
  }, which)
}

/** Fails the scenario on a page error, a Content-Security-Policy refusal, and any http(s)/ws request to another origin. */
export function guard (context, origin, result) {
  context.on('request', request => {
    const url = new URL(request.url())
    if ((url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'ws:') && url.origin !== origin) {
      result.violations.push(`request to another host: ${request.url()}`)
    }
  })
  const watch = page => {
    page.on('pageerror', err => result.violations.push(`page error: ${err.message}`))
    page.on('console', message => {
      if (message.type() === 'error' && message.text().includes('Content Security Policy')) {
        result.violations.push(`CSP: ${message.text()}`)
      }
    })
  }
  context.pages().forEach(watch)
  context.on('page', watch)
}

/** Playwright's own launch, on a fresh or given profile. */
export function launchPersistent (userDataDir) {
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, viewport: VIEWPORT, args: CHROMIUM_ARGS })
}

/**
 * Chromium started by us (so that its PID is ours to SIGKILL), in a process group of its own, on
 * `userDataDir`, and Playwright attached over CDP. Returns { browser, context, process }.
 */
export async function launchOwned (userDataDir) {
  const child = spawn(CHROMIUM, [...CHROMIUM_ARGS, `--user-data-dir=${userDataDir}`, '--remote-debugging-port=0',
    `--window-size=${VIEWPORT.width},${VIEWPORT.height}`, 'about:blank'], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] })
  const endpoint = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stderr })
    lines.on('line', line => {
      const match = line.match(/DevTools listening on (ws:\/\/\S+)/)
      if (match) resolve(match[1])
    })
    child.on('exit', code => reject(new Error(`chromium exited with ${code} before listening`)))
  })
  child.stderr.resume()
  const browser = await chromium.connectOverCDP(endpoint)
  const context = browser.contexts()[0]
  return { browser, context, process: child }
}

/** SIGKILL to the process group of a chromium from launchOwned: the browser and all its children. */
export async function killOwned (owned) {
  const exited = new Promise(resolve => owned.process.once('exit', resolve))
  process.kill(-owned.process.pid, 'SIGKILL')
  await exited
}

/**
 * Runs `body(result)` under the scenario's time limit and prints ONE JSON line: the result, with
 * `ok` (no error, no violation) and `error` when the body threw. Exits 0 when ok.
 */
export async function runScenario (opts, body) {
  const result = { scenario: opts.scenario, ok: false, violations: [] }
  const timer = setTimeout(() => {
    result.error = 'scenario timed out'
    console.log(JSON.stringify(result))
    process.exit(1)
  }, opts.timeoutMs || 60000)
  try {
    await body(result)
    result.ok = result.violations.length === 0
  } catch (err) {
    result.error = String(err && err.stack ? err.stack : err)
  } finally {
    clearTimeout(timer)
  }
  console.log(JSON.stringify(result))
  process.exit(result.ok ? 0 : 1)
}

/** A scenario in Playwright's own chromium on a fresh profile, removed afterwards. */
export async function inFreshBrowser (opts, result, scenario) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'tusd-py-chromium-'))
  let context
  try {
    context = await launchPersistent(userDataDir)
    guard(context, new URL(opts.origin).origin, result)
    const page = context.pages()[0] || await context.newPage()
    await scenario(page, result, context)
  } finally {
    if (context) await context.close().catch(() => {})
    rmSync(userDataDir, { recursive: true, force: true })
  }
}

let stdinLines = null

/** Asks the Python side to act (stop or start the server) and waits until it says done. */
export async function ask (what) {
  if (!stdinLines) stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  console.log(JSON.stringify({ ask: what }))
  const { value, done } = await stdinLines.next()
  if (done || value.trim() !== 'done') throw new Error(`the test did not do ${what}: ${value}`)
}
