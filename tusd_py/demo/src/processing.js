// After the last byte: the server's processing, read from the Recordings API until it ends.
import { ApiError, serverIdOf } from './api.js'

const POLL_MS = 1000
/** Statuses the server moves on from by itself. */
export const PROCESSING = new Set(['uploaded', 'processing'])
const SERVER_STATUSES = new Set(['uploaded', 'processing', 'completed', 'failed'])

export class ProcessingWatcher {
  constructor ({ server, list, changed }) {
    this.server = server
    this.list = list
    this.changed = changed
    this.timer = null
  }

  /** Polls while any recording is being processed; stops when none is (kick() starts it again). */
  kick () {
    if (this.timer === null) this.timer = setTimeout(() => this.poll(), 0)
  }

  async poll () {
    const pending = this.list().filter(rec => PROCESSING.has(rec.status) && rec.uploadUrl)
    let signedOut = !this.server.signedIn
    for (const rec of pending) {
      if (signedOut) break
      try {
        await this.refresh(rec)
      } catch (err) {
        // A 401: the page asks the user to sign in again, and the token field kicks this again.
        signedOut = err instanceof ApiError && err.status === 401
        // The server is away: keep what we know and look again on the next round.
        if (!signedOut && !(err instanceof TypeError)) console.warn('reading the recording failed', err)
      }
    }
    this.timer = null
    if (!signedOut && this.list().some(rec => PROCESSING.has(rec.status) && rec.uploadUrl)) {
      this.timer = setTimeout(() => this.poll(), POLL_MS)
    }
  }

  async refresh (rec) {
    let detail
    try {
      detail = await this.server.getRecording(serverIdOf(rec.uploadUrl))
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        await this.changed(rec.id, { status: 'failed', serverError: 'the server no longer has this recording' })
        return
      }
      throw err
    }
    // "recorded"/"uploading" on the server: its pipeline has not seen the finish yet; we know the bytes are in.
    const status = SERVER_STATUSES.has(detail.status) ? detail.status : 'uploaded'
    await this.changed(rec.id, {
      status,
      serverId: detail.id,
      analysis: detail.analysis,
      sha256: detail.sha256,
      serverError: status === 'failed' ? detail.last_error || 'processing failed' : null
    })
  }
}
