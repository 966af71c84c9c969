// @stage/app: who this page is (session, app) and its render state's error, through the
// page's token, which is good for this session's preview calls and nothing else. An app's
// page (/s/:appSid, its published version) has no error URL: its errors are not recorded.
const element = document.getElementById("stage-preview");
export const config = JSON.parse(element.textContent);

async function call(method, body) {
  if (!config.errorUrl) return;
  const answer = await fetch(config.errorUrl, {
    method,
    headers: { authorization: `Bearer ${config.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!answer.ok) throw new Error(`Stage answered ${answer.status} to ${method} ${config.errorUrl}`);
}

/** Records `error` (a string) as the render's error: `stage status` shows it (on a session's
 * page; on an app's page it records nothing). */
export function reportError(error) {
  return call("POST", { error: String(error) });
}

/** Clears the render's error. */
export function clearError() {
  return call("DELETE");
}

export const app = { sessionId: config.session, sid: config.appSid, reportError, clearError };
export default app;
