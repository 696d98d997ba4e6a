// The API as the console calls it: the token from this tab's session storage (never a cookie,
// never a URL), JSON in and out, and every refusal as an ApiError with the server's stable code
// and message. The console has no privilege of its own: what the token may do is what it shows.

const TOKEN_KEY = "strongroom.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** One call. `raw` answers the Response itself when it succeeded (downloads, metrics). */
export async function call(method, path, body, { raw = false } = {}) {
  const headers = {};
  const secret = token.get();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "unreachable", "the server did not answer (is it running?)");
  }
  if (raw && response.ok) return response;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error;
    const retry = response.headers.get("Retry-After");
    const message = (error && error.message) || response.statusText || "request failed";
    throw new ApiError(
      response.status,
      (error && error.code) || `http_${response.status}`,
      retry ? `${message} (retry after ${retry} s)` : message,
    );
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);
export const put = (path, body) => call("PUT", path, body);
export const del = (path) => call("DELETE", path);

/** A path segment. */
export const seg = (value) => encodeURIComponent(value);

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** `/v1/ns/{ns}/…` */
export const ns = (namespace, rest = "") => `/v1/ns/${seg(namespace)}${rest}`;

/** `/v1/ns/{ns}/users/{user}/…` */
export const user = (namespace, id, rest = "") => ns(namespace, `/users/${seg(id)}${rest}`);

/** Whether a policy allows `capability` in `namespace` (admin implies every capability). */
export function can(policy, capability, namespace) {
  if (!policy) return false;
  const covers = policy.namespaces.includes("*") || policy.namespaces.includes(namespace);
  const caps = policy.capabilities;
  return covers && (caps.includes("admin") || caps.includes(capability));
}

/** Operator actions (tokens, audit, jobs) need admin on every namespace. */
export function isOperator(policy) {
  return Boolean(policy && policy.namespaces.includes("*") && policy.capabilities.includes("admin"));
}

/** Every page of a listing (at most `max` items). */
export async function all(path, max = 5000) {
  const items = [];
  let cursor = "";
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(`${path}${sep}limit=1000${cursor ? `&cursor=${seg(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor || items.length >= max) return items;
  }
}
