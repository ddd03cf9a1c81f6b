// The upload queue: one recording at a time, oldest first, with tus-js-client.
//
// A recording that cannot reach the server stays queued; the queue waits (backoff, doubling up to
// 30 s) and tries again, at once when the browser says it is back online. tus-js-client keeps each
// upload's URL in localStorage under a fingerprint made from the recording's id, so an interrupted
// upload resumes from the server's offset (HEAD) even after a reload.
import * as tus from 'tus-js-client'
import { audioOf } from './store.js'

const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000]
// In-request retries for a blip; longer outages are the queue's backoff.
const TUS_RETRY_DELAYS = [0, 1000]

/** Statuses of a recording whose bytes are not all on the server yet. */
export const WAITING = new Set(['recorded', 'uploading'])

export function fingerprintOf (id) {
  return `tusd-py-demo:${id}`
}

/** The HTTP status of a failed tus request, or null when no response came (network, CORS, abort). */
function statusOf (err) {
  const response = err && err.originalResponse
  const status = response ? response.getStatus() : 0
  return status || null
}

/**
 * 4xx answers (other than a conflict or a lock) will not change by trying again; a 401 is not the
 * recording's fault either: it waits for the user to sign in again.
 */
export function isPermanent (status) {
  return status !== null && status >= 400 && status < 500 && ![401, 409, 423].includes(status)
}

const SIGN_IN = 'sign in'


/** A short reason for the page: the server's plain-text answer, or that there was none. */
function reasonOf (err) {
  const status = statusOf(err)
  if (status === null) return navigator.onLine ? 'no answer from the server' : 'the browser is offline'
  const body = String(err.originalResponse.getBody() || '').trim()
  return `HTTP ${status}${body ? `: ${body}` : ''}`
}

export class UploadQueue {
  constructor ({ server, list, changed }) {
    this.server = server
    this.list = list // () => the recordings, oldest first
    this.changed = changed // (id, changes) => the queue changed this recording
    this.running = false
    this.failures = 0
    this.timer = null
    this.retryAt = null
    this.current = null // { id, upload }
    this.progress = new Map() // id -> bytes on the server, as tus-js-client reports them
    addEventListener('online', () => this.kick())
  }

  /** Start now, unless an upload is already running. */
  kick () {
    clearTimeout(this.timer)
    this.timer = null
    this.retryAt = null
    if (!this.running) this.run()
  }

  async run () {
    this.running = true
    try {
      for (;;) {
        const next = this.list().find(rec => WAITING.has(rec.status) && !rec.uploadError)
        if (!next) break
        if (!this.server.signedIn) {
          // No request without a token: the queue waits for one (the token field kicks it).
          await this.changed(next.id, { lastAttemptError: this.server.unauthorized() })
          break
        }
        const ok = await this.uploadOne(next)
        if (ok === SIGN_IN) break
        if (!ok) {
          const delay = BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)]
          this.retryAt = Date.now() + delay
          this.timer = setTimeout(() => this.kick(), delay)
          this.changed(null, {})
          break
        }
      }
    } finally {
      this.running = false
    }
  }

  /**
   * Uploads one recording; false when the server could not be reached (the queue backs off), SIGN_IN
   * when it refused the token (the queue waits for a new one).
   */
  async uploadOne (rec) {
    const blob = await audioOf(rec.id)
    if (!blob) {
      await this.changed(rec.id, { status: 'failed', uploadError: 'the audio is missing from this browser' })
      return true
    }
    try {
      await this.transfer(rec, blob)
    } catch (err) {
      if (err === 'aborted') return true
      const status = statusOf(err)
      if (status === 401) {
        this.progress.delete(rec.id)
        await this.changed(rec.id, { lastAttemptError: this.server.unauthorized() })
        return SIGN_IN
      }
      if (isPermanent(status)) {
        await this.changed(rec.id, { status: 'failed', uploadError: reasonOf(err) })
        return true
      }
      this.failures += 1
      this.progress.delete(rec.id) // bytes sent are not bytes stored: the next try asks the server
      await this.changed(rec.id, { lastAttemptError: reasonOf(err) })
      return false
    } finally {
      this.current = null
    }
    this.failures = 0
    await this.changed(rec.id, { status: 'uploaded', lastAttemptError: null })
    return true
  }

  transfer (rec, blob) {
    return new Promise((resolve, reject) => {
      const upload = new tus.Upload(blob, {
        endpoint: this.server.endpoint,
        headers: this.server.headers(),
        metadata: { filename: rec.name, filetype: rec.type || 'application/octet-stream', mode: rec.source },
        fingerprint: async () => fingerprintOf(rec.id),
        uploadUrl: rec.uploadUrl || null,
        retryDelays: TUS_RETRY_DELAYS,
        removeFingerprintOnSuccess: false,
        onUploadUrlAvailable: () => {
          this.changed(rec.id, { uploadUrl: upload.url, status: 'uploading' })
        },
        onProgress: (sent, total) => {
          this.progress.set(rec.id, sent)
          this.changed(rec.id, null)
        },
        onSuccess: () => {
          this.progress.set(rec.id, blob.size)
          resolve()
        },
        onError: reject
      })
      this.current = { id: rec.id, upload, reject }
      upload.findPreviousUploads().then(previous => {
        if (previous.length) upload.resumeFromPreviousUpload(previous[previous.length - 1])
        upload.start()
      }, reject)
    })
  }

  /** Stops the upload of this recording if it is the one running (before deleting it). */
  async cancel (id) {
    if (this.current && this.current.id === id) {
      const { upload, reject } = this.current
      await upload.abort(false)
      reject('aborted')
    }
    await forgetUploadUrls(id)
  }
}

/** Drops tus-js-client's stored URLs of this recording, so that a new upload starts from scratch. */
export async function forgetUploadUrls (id) {
  const storage = tus.defaultOptions.urlStorage
  for (const entry of await storage.findUploadsByFingerprint(fingerprintOf(id))) {
    await storage.removeUpload(entry.urlStorageKey)
  }
}
