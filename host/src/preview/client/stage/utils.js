// @stage/utils: helpers for batches of work.

/** Maps `items` through `fn` at most `concurrency` at a time, keeping their order. */
export async function batchedMap(items, fn, concurrency = 4) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
}

/** `fetch` with retries on network errors, 429 and 5xx (the page's CSP still decides where it may go). */
export async function fetchWithRetry(url, options = {}, retries = 3) {
  for (let attempt = 0; ; attempt++) {
    try {
      const answer = await fetch(url, options);
      if ((answer.status === 429 || answer.status >= 500) && attempt < retries) throw new Error(`status ${answer.status}`);
      return answer;
    } catch (error) {
      if (attempt >= retries) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
  }
}

export default { batchedMap, fetchWithRetry };
