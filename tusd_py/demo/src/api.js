// The server: its page config and the Recordings API, with the user's token when there is one.
// Every URL is relative to the page (config.json's too), so the page works behind a proxy prefix.

// The API's errors are RFC 9457 problem documents: the reason a person reads is their `detail`.
function reasonOf (body) {
  try {
    const problem = JSON.parse(body)
    if (problem && typeof problem.detail === 'string') return problem.detail
  } catch {}
  return body.trim()
}

export class ApiError extends Error {
  constructor (status, message) {
    super(message)
    this.status = status
  }
}

export class Server {
  constructor (tokenSource, unauthorized) {
    this.token = tokenSource
    this.unauthorized = unauthorized // () => the server refused the token (or there is none); returns a short note
    this.config = null
  }

  headers () {
    const token = this.token().trim()
    return token ? { Authorization: `Bearer ${token}` } : {}
  }

  /** False when this server wants a token and the page has none (no request would be accepted). */
  get signedIn () {
    return !(this.config && this.config.auth) || Boolean(this.token().trim())
  }

  async loadConfig () {
    this.config = await this.json('config.json', {}, false)
    return this.config
  }

  get endpoint () {
    return new URL(this.config.tus_endpoint, location.href).href
  }

  apiUrl (path) {
    return new URL(`${this.config.api_prefix}${path}`, location.href).href
  }

  recordingUrl (serverId) {
    return this.apiUrl(`/recordings/${encodeURIComponent(serverId)}`)
  }

  async json (url, init = {}, auth = true) {
    const response = await fetch(url, { ...init, headers: { ...(auth ? this.headers() : {}), ...(init.headers || {}) } })
    if (response.status === 401 && auth) this.unauthorized()
    if (!response.ok) {
      throw new ApiError(response.status, reasonOf(await response.text()) || `HTTP ${response.status}`)
    }
    return response.status === 204 ? null : response.json()
  }

  getRecording (serverId) {
    return this.json(this.recordingUrl(serverId))
  }

  async deleteRecording (serverId) {
    try {
      await this.json(this.recordingUrl(serverId), { method: 'DELETE' })
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err // already gone is fine
    }
  }

  /** A signed, short-lived link to the server's copy: what the player uses once the local copy is gone. */
  async downloadUrl (serverId) {
    return (await this.json(`${this.recordingUrl(serverId)}/download-url`, { method: 'POST' })).url
  }

  /** Puts this user's failed recordings back in the processing queue. */
  retryProcessing () {
    return this.json(this.apiUrl('/sync'), { method: 'POST' })
  }
}

/** The server's id of an upload: the last segment of its tus URL. */
export function serverIdOf (uploadUrl) {
  return decodeURIComponent(new URL(uploadUrl).pathname.split('/').filter(Boolean).pop())
}
