// The preview page's own script: renders the session's entry module, renders again on
// each render event (GET /api/v1/stage/sessions/:id/events), and reports what breaks in
// the browser (a crash while rendering, an uncaught error, a module that does not load)
// to the session's render state, so that `stage status` shows it. On an app's page
// (/s/:appSid) it renders the app's published version instead, again at each new version
// (GET /api/v1/stage/apps/:sid/events), and what breaks is shown on the page only.
import { Component, createElement } from "react";
import { createRoot } from "react-dom/client";
import { config, reportError } from "@stage/app";

const root = createRoot(document.getElementById("stage-root"));
let shownBuild = null;
let lastReported = null;

function text(error) {
  if (error && typeof error === "object" && "message" in error) {
    return `${error.name || "Error"}: ${error.message}`;
  }
  return String(error);
}

function report(error) {
  const message = text(error);
  if (message === lastReported) return;
  lastReported = message;
  reportError(message).catch(() => {});
}

function overlay(title, body) {
  return createElement(
    "div",
    { className: "stage-overlay", role: "alert", "data-stage-problem": "" },
    createElement("strong", null, title),
    createElement("pre", null, body),
  );
}

function waiting() {
  return createElement(
    "div",
    { className: "stage-waiting" },
    createElement("strong", null, `Nothing rendered yet in ${config.session}`),
    createElement(
      "pre",
      null,
      `stage write /app/App.tsx ./App.tsx -s ${config.session}\nstage render -s ${config.session}\n\n` +
        "The entry must default-export a React component. This page updates when it is rendered.",
    ),
  );
}

class Boundary extends Component {
  constructor(props) {
    super(props);
    this.state = { error: null };
  }
  static getDerivedStateFromError(error) {
    return { error };
  }
  componentDidCatch(error) {
    report(error);
  }
  render() {
    return this.state.error ? overlay("The app crashed", text(this.state.error)) : this.props.children;
  }
}

async function show(state) {
  if (!state.render && !state.published) {
    shownBuild = null;
    root.render(waiting());
    return;
  }
  if (state.problems) {
    shownBuild = null;
    root.render(overlay("The app did not compile", state.problems));
    return;
  }
  if (state.build === shownBuild) return;
  try {
    const module = await import(state.entryUrl);
    shownBuild = state.build;
    lastReported = null;
    const App = module.default;
    const app = typeof App === "function" ? createElement(App) : App;
    root.render(createElement(Boundary, { key: state.build }, app));
    document.documentElement.dataset.stageBuild = state.build;
  } catch (error) {
    shownBuild = null;
    root.render(overlay("The app could not load", text(error)));
    report(error);
  }
}

async function refresh() {
  const answer = await fetch(config.stateUrl, { cache: "no-store" });
  if (answer.ok) await show(await answer.json());
}

window.addEventListener("error", (event) => report(event.error ?? event.message));
window.addEventListener("unhandledrejection", (event) => report(event.reason));

const events = new EventSource(config.eventsUrl);
events.addEventListener(config.state.published ? "publish" : "render", () => refresh().catch(report));
events.addEventListener("open", () => document.documentElement.setAttribute("data-stage-live", ""));
show(config.state);
