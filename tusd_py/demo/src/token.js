// The user's token: kept in this tab's sessionStorage (a reload keeps it; closing the tab or the
// browser forgets it), never in localStorage, and dropped once its own expiry (a JWT's `exp`) passes.

const KEY = 'tusd-py-demo:token'

/** A JWT's expiry in ms since the epoch, or null (not a JWT, or no `exp`). */
export function expiryOf (token) {
  const payload = token.split('.')[1]
  if (!payload) return null
  try {
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/')))
    return typeof json.exp === 'number' ? json.exp * 1000 : null
  } catch {
    return null
  }
}

export class Token {
  constructor () {
    localStorage.removeItem(KEY) // where earlier versions of the page kept it, for good
    this.value = sessionStorage.getItem(KEY) || ''
  }

  /** The token to send, or '' when there is none or it has expired. */
  get () {
    const expiry = expiryOf(this.value)
    return expiry !== null && expiry <= Date.now() ? '' : this.value
  }

  get expired () {
    const expiry = expiryOf(this.value)
    return expiry !== null && expiry <= Date.now()
  }

  set (value) {
    this.value = value.trim()
    if (this.value) sessionStorage.setItem(KEY, this.value)
    else sessionStorage.removeItem(KEY)
  }
}
