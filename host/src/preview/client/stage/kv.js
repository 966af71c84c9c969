// @stage/kv: a key-value store in the browser's localStorage, one namespace per session.
import { config } from "@stage/app";

const prefix = `stage:kv:${config.session}:`;

export const kv = {
  get(key) {
    const raw = localStorage.getItem(prefix + key);
    if (raw === null) return null;
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  },
  set(key, value) {
    localStorage.setItem(prefix + key, JSON.stringify(value));
  },
  delete(key) {
    localStorage.removeItem(prefix + key);
  },
  list() {
    const keys = [];
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (key && key.startsWith(prefix)) keys.push(key.slice(prefix.length));
    }
    return keys;
  },
  clear() {
    for (const key of this.list()) localStorage.removeItem(prefix + key);
  },
};
export default kv;
