#!/usr/bin/env node
// Drives Debian's chromium (playwright-core, no browser download) through one scenario of the /demo
// page and prints ONE JSON line: {ok, error?, violations, ...facts for the Python side to check}.
//
// Usage: node run-demo.mjs --json '{"scenario": "record", "origin": "http://127.0.0.1:PORT",
//          "token": "...", "artifacts": "/path", "file": "/path/for/resume", "timeoutMs": 60000}'
// Any page error, or any request to another host than `origin`, is a violation: the caller fails.
import { REC, facts, inFreshBrowser, openPage as openAt, readOptions, recordFor, runScenario, shot as shotAs, waitStatus } from './demo-lib.mjs'

const opts = readOptions()
const TUS_OR_API = url => url.pathname.startsWith('/files/') || url.pathname.startsWith('/api/')
const shot = (page, name) => shotAs(opts, page, name)
const openPage = page => openAt(opts, page)

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

runScenario(opts, result => inFreshBrowser(opts, result, (page, result, context) => scenarios[opts.scenario](page, result, context)))
