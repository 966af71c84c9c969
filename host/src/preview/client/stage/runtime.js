// @stage/runtime: what compiled session files call. A CSS file's module adds its text as a
// constructed stylesheet (no inline <style>, which the page's CSP refuses), replacing the
// one of the same path, so that a new render's CSS takes the old one's place.
const sheets = new Map();

export function addStyle(path, css) {
  let sheet = sheets.get(path);
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheets.set(path, sheet);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  }
  sheet.replaceSync(css);
}
