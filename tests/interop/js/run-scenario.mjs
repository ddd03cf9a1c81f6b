#!/usr/bin/env node
// Runs one tus-js-client scenario against a tus endpoint and prints ONE JSON line on stdout.
//
// Usage:
//   node run-scenario.mjs --scenario single --endpoint http://127.0.0.1:8080/files/ \
//        --file /tmp/a.bin [--size N] [--header 'Authorization: Bearer x'] [--storage /tmp/urls.json]
//        [--chunk-size N] [--timeout-ms N] [--metadata '{"filename":"a.bin"}']
//   node run-scenario.mjs --json '{"scenario": "single", "endpoint": "...", "file": "...", "headers": {}}'
//
// If --file is missing, --size bytes of pseudo-random data are written to a temporary file.
// Exit code: 0 when the scenario's own expectations held (result.ok), 1 otherwise, 2 on bad arguments.
// The result's "requests" list is every HTTP exchange tus-js-client made, so a caller can assert the
// request sequence (for example that a resume starts with HEAD), not only the final bytes.

import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import * as tus from 'tus-js-client'

import { parseArgs } from './scenario-args.mjs'

const MiB = 1024 * 1024

// Headers worth reporting per request. Authorization is reported as present/absent only.
const REPORTED_REQUEST_HEADERS = [
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Defer-Length',
  'Upload-Offset',
  'Upload-Metadata',
  'Upload-Concat',
  'Content-Type',
  'X-HTTP-Method-Override',
]
const REPORTED_RESPONSE_HEADERS = ['Location', 'Upload-Offset', 'Upload-Length', 'Tus-Resumable']

// ---------------------------------------------------------------------------------------------
// Recording what the client does

class Recorder {
  constructor(authHeaderName) {
    this.requests = []
    this.progress = [] // bytesSent values reported by onProgress, in order
    this.accepted = [] // server offsets reported by onChunkComplete, in order
    this.errors = []
    this.authHeaderName = authHeaderName
  }

  // Options that hook every Upload of the scenario into this recorder.
  hooks() {
    return {
      onBeforeRequest: (req) => {
        const headers = {}
        for (const name of REPORTED_REQUEST_HEADERS) {
          const value = req.getHeader(name)
          if (value !== undefined) headers[name] = String(value)
        }
        const entry = { method: req.getMethod(), url: req.getURL(), headers, status: null }
        if (this.authHeaderName) entry.auth = req.getHeader(this.authHeaderName) !== undefined
        req._interopEntry = entry
        this.requests.push(entry)
      },
      onAfterResponse: (req, res) => {
        const entry = req._interopEntry
        if (!entry) return
        entry.status = res.getStatus()
        entry.response = {}
        for (const name of REPORTED_RESPONSE_HEADERS) {
          const value = res.getHeader(name)
          if (value !== undefined) entry.response[name] = value
        }
      },
      onProgress: (bytesSent) => {
        this.progress.push(bytesSent)
      },
      onChunkComplete: (_chunkSize, bytesAccepted) => {
        this.accepted.push(bytesAccepted)
      },
    }
  }

  error(err) {
    const entry = { message: String(err?.message ?? err) }
    const res = err?.originalResponse
    if (res) {
      entry.status = res.getStatus()
      entry.body = res.getBody()?.slice(0, 500)
    }
    this.errors.push(entry)
  }
}

function isNonDecreasing(values) {
  return values.every((v, i) => i === 0 || v >= values[i - 1])
}

function isIncreasing(values) {
  return values.every((v, i) => i === 0 || v > values[i - 1])
}

// ---------------------------------------------------------------------------------------------
// Upload helpers

// Starts `upload` and resolves when it succeeds; rejects with its error.
function run(upload) {
  return new Promise((resolve, reject) => {
    upload.options.onSuccess = () => resolve(upload)
    upload.options.onError = reject
    upload.start()
  })
}

// Starts `upload` and aborts it (optionally terminating) once `shouldStop(recorder)` is true.
// Resolves with the upload after the abort; rejects if the upload finishes or fails first.
function runUntil(upload, recorder, shouldStop, { terminate = false } = {}) {
  return new Promise((resolve, reject) => {
    let stopped = false
    const check = () => {
      if (stopped || !shouldStop(recorder)) return
      stopped = true
      // abort() returns a promise that settles after the optional DELETE.
      upload.abort(terminate).then(() => resolve(upload), reject)
    }
    const { onProgress, onChunkComplete } = upload.options
    upload.options.onProgress = (...args) => {
      onProgress(...args)
      check()
    }
    upload.options.onChunkComplete = (...args) => {
      onChunkComplete(...args)
      check()
    }
    upload.options.onSuccess = () => {
      if (!stopped) reject(new Error('upload finished before the abort point was reached'))
    }
    upload.options.onError = reject
    upload.start()
  })
}

async function headUpload(url, headers) {
  const res = await fetch(url, {
    method: 'HEAD',
    headers: { 'Tus-Resumable': '1.0.0', ...headers },
    signal: AbortSignal.timeout(10_000),
  })
  return {
    status: res.status,
    uploadOffset: res.headers.get('upload-offset'),
    uploadLength: res.headers.get('upload-length'),
    uploadMetadata: res.headers.get('upload-metadata'),
  }
}

// A Readable that re-chunks the file into irregular pieces, like a network or encoder stream would.
function irregularStream(path) {
  const data = readFileSync(path)
  async function* pieces() {
    let pos = 0
    let i = 0
    while (pos < data.length) {
      const size = 16 * 1024 + ((i++ * 7919) % (48 * 1024))
      yield data.subarray(pos, pos + size)
      pos += size
    }
  }
  return Readable.from(pieces(), { objectMode: false })
}

// A fileReader whose PATCH bodies trickle out (64 KiB every 10 ms), so that an abort lands while a
// request body is in flight even against a fast local server. Only the pacing differs from the default
// Node file reader; the fingerprint still comes from the fs.ReadStream input.
class SlowFileReader {
  constructor(path) {
    this.path = path
  }

  openFile() {
    const data = readFileSync(this.path)
    return Promise.resolve({
      size: data.length,
      slice(start, end) {
        const part = data.subarray(start, Math.min(end, data.length))
        async function* paced() {
          for (let pos = 0; pos < part.length; pos += 64 * 1024) {
            await new Promise((resolve) => setTimeout(resolve, 10))
            yield part.subarray(pos, pos + 64 * 1024)
          }
        }
        const stream = Readable.from(paced(), { objectMode: false })
        stream.size = part.length
        return Promise.resolve({ value: stream, done: end >= data.length })
      },
      close() {},
    })
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios. Each returns { upload, extra } where upload is the Upload that finished (or null).

const UNICODE_FILENAME = 'voix-\u00e9t\u00e9-\u4f1a\u8b70-\u{1F3A4}.m4a'

const scenarios = {
  // One PATCH carrying the whole file.
  async single(ctx) {
    const upload = ctx.newUpload(createReadStream(ctx.file), {})
    await run(upload)
    return { upload }
  },

  // 1 MiB PATCH requests (or --chunk-size).
  async chunked(ctx) {
    const upload = ctx.newUpload(createReadStream(ctx.file), { chunkSize: ctx.chunkSize ?? MiB })
    await run(upload)
    return { upload }
  },

  // Abort after some accepted chunks, then a NEW Upload with the same fingerprint finds the stored URL
  // in a file-based URL storage and resumes (HEAD, then PATCH from the server's offset).
  async resume(ctx) {
    const chunkSize = ctx.chunkSize ?? 256 * 1024
    const urlStorage = new tus.FileUrlStorage(ctx.storage)
    const first = ctx.newUpload(createReadStream(ctx.file), { chunkSize, urlStorage })
    const stopAt = Math.floor(ctx.size / 2)
    await runUntil(first, ctx.recorder, (r) => r.accepted.length > 0 && r.accepted.at(-1) >= stopAt)
    const firstUrl = first.url
    const requestsBeforeResume = ctx.recorder.requests.length

    const second = ctx.newUpload(createReadStream(ctx.file), { chunkSize, urlStorage })
    const previous = await second.findPreviousUploads()
    if (previous.length === 0) throw new Error('no previous upload found in the URL storage')
    second.resumeFromPreviousUpload(previous[0])
    await run(second)
    return {
      upload: second,
      extra: {
        firstUrl,
        previousUploads: previous.length,
        resumedRequests: ctx.recorder.requests.slice(requestsBeforeResume).map((r) => r.method),
        sameUrl: firstUrl === second.url,
      },
    }
  },

  // The client aborts while a PATCH body is in flight (the server sees the connection drop mid-body),
  // then a new Upload resumes from the URL storage.
  async 'abort-mid-request'(ctx) {
    const urlStorage = new tus.FileUrlStorage(ctx.storage)
    const fileReader = new SlowFileReader(ctx.file)
    const first = ctx.newUpload(createReadStream(ctx.file), { urlStorage, fileReader })
    const stopAt = Math.floor(ctx.size / 3)
    await runUntil(first, ctx.recorder, (r) => r.progress.length > 0 && r.progress.at(-1) >= stopAt)
    const firstUrl = first.url
    const requestsBeforeResume = ctx.recorder.requests.length
    // The aborted PATCH has no response; mark it so the test can see it.
    for (const r of ctx.recorder.requests) if (r.status === null) r.aborted = true
    const headAfterAbort = await headUpload(firstUrl, ctx.headers)

    // Like an app would, let the resumed upload retry (e.g. a 423 while the server still holds the
    // lock of the dropped request); the recorded requests show whether that happened.
    const second = ctx.newUpload(createReadStream(ctx.file), { urlStorage, retryDelays: [200, 500, 1000, 2000] })
    const previous = await second.findPreviousUploads()
    if (previous.length === 0) throw new Error('no previous upload found in the URL storage')
    second.resumeFromPreviousUpload(previous[0])
    await run(second)
    return {
      upload: second,
      extra: {
        firstUrl,
        headAfterAbort,
        resumedRequests: ctx.recorder.requests.slice(requestsBeforeResume).map((r) => r.method),
        sameUrl: firstUrl === second.url,
      },
    }
  },

  // A plain upload through a fault-injecting proxy: the client's own retry (HEAD + PATCH) must recover.
  async 'network-cut'(ctx) {
    const upload = ctx.newUpload(createReadStream(ctx.file), {
      chunkSize: ctx.chunkSize ?? Number.POSITIVE_INFINITY,
      retryDelays: [0, 200, 500, 1000, 2000],
    })
    await run(upload)
    return { upload }
  },

  // Upload-Defer-Length from a Node Readable; the last PATCH carries Upload-Length.
  async deferred(ctx) {
    const chunkSize = ctx.chunkSize ?? MiB
    if (ctx.size % chunkSize === 0) {
      // tus-js-client 4.3.1 waits forever for a stream that ends exactly on a chunk boundary
      // (tus/tus-js-client#779): refuse instead of hanging until the timeout.
      throw new Error('deferred: size must not be a multiple of chunkSize (tus-js-client#779)')
    }
    const upload = ctx.newUpload(irregularStream(ctx.file), {
      chunkSize,
      uploadLengthDeferred: true,
    })
    await run(upload)
    return { upload }
  },

  // Three partial uploads (Upload-Concat: partial) and a final concatenation POST.
  async parallel(ctx) {
    const upload = ctx.newUpload(createReadStream(ctx.file), { parallelUploads: 3 })
    await run(upload)
    const partials = ctx.recorder.requests
      .filter((r) => r.method === 'POST' && r.headers['Upload-Concat'] === 'partial')
      .map((r) => r.response?.Location ?? null)
    const finals = ctx.recorder.requests.filter(
      (r) => r.method === 'POST' && (r.headers['Upload-Concat'] ?? '').startsWith('final;'),
    )
    return {
      upload,
      extra: { partialCount: partials.length, finalConcat: finals.map((r) => r.headers['Upload-Concat']) },
    }
  },

  async 'unicode-metadata'(ctx) {
    const metadata = { filename: UNICODE_FILENAME, filetype: 'audio/mp4', note: 'caf\u00e9 \u2615' }
    const upload = ctx.newUpload(createReadStream(ctx.file), { metadata })
    await run(upload)
    return { upload, extra: { metadata } }
  },

  async 'no-metadata'(ctx) {
    const upload = ctx.newUpload(createReadStream(ctx.file), { metadata: {} })
    await run(upload)
    return { upload, extra: { metadata: {} } }
  },

  // abort(true) in the middle of a chunked upload: tus-js-client sends DELETE.
  async terminate(ctx) {
    const upload = ctx.newUpload(createReadStream(ctx.file), { chunkSize: ctx.chunkSize ?? 256 * 1024 })
    await runUntil(upload, ctx.recorder, (r) => r.accepted.length > 0, { terminate: true })
    return { upload: null, extra: { terminatedUrl: upload.url, headAfter: await headUpload(upload.url, ctx.headers) } }
  },

  // A finished upload removed with the static Upload.terminate(url).
  async 'terminate-url'(ctx) {
    const upload = ctx.newUpload(createReadStream(ctx.file), {})
    await run(upload)
    const headBefore = await headUpload(upload.url, ctx.headers)
    await tus.Upload.terminate(upload.url, { headers: ctx.headers, ...ctx.recorder.hooks(), retryDelays: null })
    return {
      upload: null,
      extra: { terminatedUrl: upload.url, headBefore, headAfter: await headUpload(upload.url, ctx.headers) },
    }
  },

  // Same as single, the test passes credentials; every request must carry them.
  async auth(ctx) {
    if (Object.keys(ctx.headers).length === 0) throw new Error('auth scenario needs --header')
    const upload = ctx.newUpload(createReadStream(ctx.file), { chunkSize: ctx.chunkSize ?? MiB })
    await run(upload)
    return { upload }
  },
}

// ---------------------------------------------------------------------------------------------

function sha256File(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

function prepareFile(opts) {
  if (opts.file) return opts.file
  const dir = mkdtempSync(join(tmpdir(), 'tus-interop-'))
  const path = join(dir, 'payload.bin')
  writeFileSync(path, randomBytes(opts.size))
  return path
}

async function main() {
  const started = Date.now()
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ ok: false, errors: [{ message: String(err.message) }] })}\n`)
    process.exit(2)
  }
  const scenario = scenarios[opts.scenario]
  if (!scenario) {
    const message = `unknown scenario ${opts.scenario}; known: ${Object.keys(scenarios).join(', ')}`
    process.stdout.write(`${JSON.stringify({ ok: false, errors: [{ message }] })}\n`)
    process.exit(2)
  }

  const file = prepareFile(opts)
  const size = readFileSync(file).length
  const headers = opts.headers ?? {}
  const authHeaderName = Object.keys(headers).find((h) => h.toLowerCase() === 'authorization')
  const recorder = new Recorder(authHeaderName)
  const ctx = {
    file,
    size,
    headers,
    recorder,
    chunkSize: opts.chunkSize,
    storage: opts.storage ?? join(mkdtempSync(join(tmpdir(), 'tus-urls-')), 'urls.json'),
    newUpload(input, extra) {
      return new tus.Upload(input, {
        endpoint: opts.endpoint,
        headers,
        metadata: opts.metadata ?? { filename: 'payload.bin', filetype: 'application/octet-stream' },
        retryDelays: null, // scenarios that want retries say so
        ...recorder.hooks(),
        ...extra,
      })
    },
  }

  const result = { scenario: opts.scenario, ok: false, size, sha256: sha256File(file), file }
  const timeoutMs = opts.timeoutMs ?? 60_000
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`scenario timed out after ${timeoutMs} ms`)), timeoutMs)
  })

  try {
    const { upload, extra } = await Promise.race([scenario(ctx), timeout])
    result.uploadUrl = upload?.url ?? null
    if (upload?.url) {
      result.finalHead = await headUpload(upload.url, headers)
      result.finalOffset = Number(result.finalHead.uploadOffset)
    }
    Object.assign(result, extra ?? {})
    result.ok = true
  } catch (err) {
    recorder.error(err)
  } finally {
    clearTimeout(timer)
  }

  result.progress = {
    count: recorder.progress.length,
    first: recorder.progress[0] ?? null,
    last: recorder.progress.at(-1) ?? null,
    monotonic: isNonDecreasing(recorder.progress),
  }
  // Server offsets seen by the client: these must only ever grow, even across aborts and retries.
  result.accepted = recorder.accepted
  result.acceptedIncreasing = isIncreasing(recorder.accepted)
  result.requests = recorder.requests
  result.authOnEveryRequest = authHeaderName ? recorder.requests.every((r) => r.auth) : null
  result.errors = recorder.errors
  result.durationMs = Date.now() - started
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(result.ok ? 0 : 1)
}

main()
