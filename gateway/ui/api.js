// api.js - the public REST API with the signed-in key (Authorization header only)

const STORE = 'aq.key';

export function getKey() { return sessionStorage.getItem(STORE); }
export function setKey(key) { sessionStorage.setItem(STORE, key); }
export function clearKey() { sessionStorage.removeItem(STORE); }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// One call: method, path (with its query), optional JSON body; resolves to
// the parsed body, rejects with ApiError (status 0: network).
export async function call(method, path, body, signal) {
  const headers = { 'Authorization': 'Bearer ' + getKey() };
  const init = { method, headers, signal, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'The server cannot be reached');
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.error || response.statusText);
  return data;
}

export const get = (path, signal) => call('GET', path, undefined, signal);
export const post = (path, body) => call('POST', path, body === undefined ? {} : body);

// A query string from an object, leaving out empty values; arrays repeat.
export function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) q.append(name, v);
  }
  const text = q.toString();
  return text ? '?' + text : '';
}
