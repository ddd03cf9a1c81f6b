#!/usr/bin/env node
// Drives Debian's chromium (playwright-core, no browser download) through one scenario of the /demo
// page and prints ONE JSON line: {ok, error?, violations, ...facts for the Python side to check}.
//
// Usage: node run-demo.mjs --json '{"scenario": "record", "origin": "http://127.0.0.1:PORT",
//          "token": "...", "artifacts": "/path", "file": "/path/for/resume", "timeoutMs": 60000}'
// Any page error, or any request to another host than `origin`, is a violation: the caller fails.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

const opts = JSON.parse(process.argv[process.argv.indexOf('--json') + 1])
const REC = '[data-testid=recording]'
const TUS_OR_API = url => url.pathname.startsWith('/files/') || url.pathname.startsWith('/api/')

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function shot (page, name) {
  await page.screenshot({ path: join(opts.artifacts, `${opts.scenario}-${name}.png`), fullPage: true })
}

async function waitStatus (page, status, timeout = 30000) {
  await page.waitForSelector(`${REC}[data-status=${status}]`, { timeout })
}

async function recordFor (page, ms) {
  const before = await page.locator(REC).count()
  await page.click('[data-testid=record]')
  await page.waitForSelector('[data-testid=stop]:not([disabled])')
  await sleep(ms)
  await page.click('[data-testid=stop]')
  await page.waitForFunction(n => document.querySelectorAll('[data-testid=recording]').length > n, before)
}

async function openPage (page) {
  await page.goto(`${opts.origin}/demo/`)
  await page.fill('[data-testid=token]', opts.token || '')
  await page.locator('[data-testid=token]').dispatchEvent('change')
}

/** What the page shows of its first recording, and the SHA-256 of the audio kept in IndexedDB. */
async function facts (page) {
  return page.evaluate(async () => {
    const el = document.querySelector('[data-testid=recording]')
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
    const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())
    return {
      status: el.dataset.status,
      uploadUrl: el.dataset.uploadUrl || null,
      count: document.querySelectorAll('[data-testid=recording]').length,
      analysisText: el.querySelector('[data-testid=analysis]').innerText,
      blobType: blob.type,
      blobSize: blob.size,
      blobSha256: [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('')
    }
  })
}

const scenarios = {
  async record (page, result) {
    await openPage(page)
    await shot(page, 'empty')
    await recordFor(page, 2500)
    await waitStatus(page, 'completed')
    await shot(page, 'completed')
    result.completed = await facts(page)
    await page.reload()
    await waitStatus(page, 'completed', 5000)
    result.afterReload = await facts(page)
  },

  async 'unreachable-reload' (page, result, context) {
    const blocked = []
    await context.route(url => TUS_OR_API(url), route => {
      blocked.push(`${route.request().method()} ${new URL(route.request().url()).pathname}`)
      return route.abort('connectionrefused')
    })
    await openPage(page)
    await recordFor(page, 1500)
    await page.waitForSelector(`${REC}[data-retry-at]`, { timeout: 10000 })
    await shot(page, 'queued')
    result.queued = await facts(page)
    await page.reload()
    await page.waitForSelector(REC, { timeout: 5000 })
    result.afterReload = await facts(page)
    await shot(page, 'after-reload')
    result.blocked = blocked.length
    await context.unrouteAll()
    const reachable = Date.now()
    await waitStatus(page, 'completed')
    result.secondsToComplete = (Date.now() - reachable) / 1000
    result.completed = await facts(page)
  },

  async 'offline-online' (page, result, context) {
    await openPage(page)
    await context.setOffline(true)
    await recordFor(page, 1500)
    // Wait until the queue's backoff is longer than the upload will take once online.
    await page.waitForFunction(() => {
      const el = document.querySelector('[data-testid=recording]')
      return el && Number(el.dataset.retryAt) - Date.now() > 3000
    }, null, { timeout: 20000 })
    result.offline = await facts(page)
    result.retryInMs = await page.evaluate(() => Number(document.querySelector('[data-testid=recording]').dataset.retryAt) - Date.now())
    await shot(page, 'offline')
    const online = Date.now()
    await context.setOffline(false)
    await page.waitForSelector(`${REC}:is([data-status=uploaded],[data-status=processing],[data-status=completed])`, { timeout: 20000 })
    result.msToUploaded = Date.now() - online
    await waitStatus(page, 'completed')
    result.completed = await facts(page)
  },

  async resume (page, result, context) {
    // The first PATCH goes through (the test's proxy cuts it mid-body); every tus request after it
    // is refused until the page has been reloaded, so the resume is the reloaded page's own.
    let patches = 0
    let blocking = false
    const exchanges = []
    await context.route(url => url.pathname.startsWith('/files/'), route => {
      const request = route.request()
      if (request.method() === 'PATCH' && patches++ === 0) {
        blocking = true
        return route.continue()
      }
      return blocking ? route.abort('connectionrefused') : route.continue()
    })
    page.on('response', response => {
      const request = response.request()
      if (!new URL(request.url()).pathname.startsWith('/files/')) return
      exchanges.push({
        method: request.method(),
        requestOffset: request.headers()['upload-offset'] ?? null,
        status: response.status(),
        responseOffset: response.headers()['upload-offset'] ?? null
      })
    })
    await openPage(page)
    await page.setInputFiles('[data-testid=file]', opts.file)
    await page.waitForSelector(`${REC}[data-upload-url][data-retry-at]`, { timeout: 20000 })
    await shot(page, 'interrupted')
    result.interrupted = await facts(page)
    await page.reload()
    await page.waitForSelector(`${REC}[data-upload-url]`, { timeout: 5000 })
    result.afterReload = await facts(page)
    blocking = false
    await context.unrouteAll()
    await waitStatus(page, 'completed')
    await shot(page, 'completed')
    result.completed = await facts(page)
    result.exchanges = exchanges
  }
}

async function main () {
  const result = { scenario: opts.scenario, ok: false, violations: [] }
  const userDataDir = mkdtempSync(join(tmpdir(), 'tusd-py-chromium-'))
  const origin = new URL(opts.origin).origin
  let context
  const timer = setTimeout(() => {
    result.error = 'scenario timed out'
    console.log(JSON.stringify(result))
    process.exit(1)
  }, opts.timeoutMs || 60000)
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      viewport: { width: 390, height: 844 }, // a phone-sized window
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'
      ]
    })
    context.on('request', request => {
      const url = new URL(request.url())
      if ((url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'ws:') && url.origin !== origin) {
        result.violations.push(`request to another host: ${request.url()}`)
      }
    })
    const page = context.pages()[0] || await context.newPage()
    page.on('pageerror', err => result.violations.push(`page error: ${err.message}`))
    await scenarios[opts.scenario](page, result, context)
    result.ok = result.violations.length === 0
  } catch (err) {
    result.error = String(err && err.stack ? err.stack : err)
  } finally {
    clearTimeout(timer)
    if (context) await context.close().catch(() => {})
    rmSync(userDataDir, { recursive: true, force: true })
  }
  console.log(JSON.stringify(result))
  process.exit(result.ok ? 0 : 1)
}

main()
