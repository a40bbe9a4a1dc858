// The dashboard: a page over the HTTP/JSON API of the same server (docs/http.md), no build step.
// Views by URL hash: #/ queues (live), #/queue/<name>?state=... jobs, #/job/<id>, #/schedules.
const view = document.getElementById("view");
const notice = document.getElementById("notice");
const tokenInput = document.getElementById("token");
const STATES = ["queued", "scheduled", "waiting", "active", "completed", "dead", "cancelled"];
const REFRESH_MS = 2000;
let timer = null;
let previous = null; // the last stats read, for completions per second

tokenInput.value = localStorage.getItem("jobq-token") ?? "";
document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("jobq-token", tokenInput.value.trim());
  route();
});

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  const token = localStorage.getItem("jobq-token");
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await response.json();
  if (!response.ok) {
    const reason = answer.details?.find((d) => d.reason)?.reason ?? `HTTP ${response.status}`;
    throw new Error(`${reason}: ${answer.message}`);
  }
  return answer;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function say(text, kind = "error") {
  notice.textContent = text;
  notice.className = kind;
  notice.hidden = !text;
}

function age(seconds) {
  if (!seconds) return "–";
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

const seconds = (duration) => (duration ? parseFloat(duration) : 0); // "12.5s"
const when = (time) => (time ? new Date(time).toLocaleString() : "–");
const count = (value) => Number(value ?? 0);

async function act(label, call) {
  try {
    await call();
    say(label, "info");
  } catch (error) {
    say(error.message);
  }
  route();
}

// -- queues -----------------------------------------------------------------------------------

async function queues() {
  const stats = await api("GET", "/v1/stats?pageSize=1000");
  const now = Date.now();
  const rows = (stats.queues ?? []).map((q) => {
    const done = count(q.completed);
    const before = previous?.counts[q.queue];
    const rate = before !== undefined && now > previous.at ? Math.max(0, done - before) / ((now - previous.at) / 1000) : null;
    const oldest = seconds(q.oldestQueuedAge);
    return el("tr", { "data-queue": q.queue },
      el("td", {}, el("a", { href: `#/queue/${encodeURIComponent(q.queue)}` }, q.queue), " ",
        q.paused ? el("span", { class: "badge paused" }, "paused") : "",
        q.partitions > 1 ? el("span", { class: "badge", title: "partitions" }, `${q.partitions} partitions`) : ""),
      ...STATES.map((s) => el("td", { class: `${s} ${count(q[s]) ? "nonzero" : ""}`, "data-state": s }, count(q[s]))),
      el("td", { class: oldest > 300 ? "old" : "" }, age(oldest)),
      el("td", {}, rate === null ? "–" : `${rate.toFixed(1)}/s`),
      el("td", {}, q.paused
        ? el("button", { onclick: () => act(`${q.queue} resumed`, () => api("POST", `/v1/queues/${q.queue}:resume`)) }, "Resume")
        : el("button", { onclick: () => act(`${q.queue} paused`, () => api("POST", `/v1/queues/${q.queue}:pause`)) }, "Pause")),
    );
  });
  previous = { at: now, counts: Object.fromEntries((stats.queues ?? []).map((q) => [q.queue, count(q.completed)])) };
  return [
    el("h1", {}, "Queues"),
    el("table", { id: "queues" },
      el("thead", {}, el("tr", {}, el("th", {}, "queue"), ...STATES.map((s) => el("th", {}, s)),
        el("th", {}, "oldest ready"), el("th", {}, "completed/s"), el("th", {}, ""))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 11, class: "muted" }, "No queues yet.")))),
    el("p", { class: "muted" }, `Updated every ${REFRESH_MS / 1000} s.`),
  ];
}

// -- one queue's jobs -------------------------------------------------------------------------

// Filters live in the URL (from, to: local times; meta: "key=value,key=value") and are applied
// by the server (ListJobs created_after, created_before, metadata).
const FILTERS = ["from", "to", "meta"];

function filterQuery(params, query) {
  const time = (name, field) => {
    const value = params.get(name);
    if (value && !Number.isNaN(Date.parse(value))) query.set(field, new Date(value).toISOString());
  };
  time("from", "createdAfter");
  time("to", "createdBefore");
  for (const pair of (params.get("meta") ?? "").split(",")) {
    const [key, ...rest] = pair.split("=");
    if (key.trim() && rest.length) query.set(`metadata.${key.trim()}`, rest.join("=").trim());
  }
  return query;
}

function filterForm(params, go) {
  const input = (name, attributes) => el("input", { name, value: params.get(name) ?? "", ...attributes });
  return el("form", { id: "filters", onsubmit: (e) => {
      e.preventDefault();
      const chosen = new URLSearchParams();
      for (const name of FILTERS) if (e.target.elements[name].value.trim()) chosen.set(name, e.target.elements[name].value.trim());
      go(chosen);
    } },
    el("label", {}, "Enqueued from ", input("from", { type: "datetime-local", step: 1 })),
    el("label", {}, " to ", input("to", { type: "datetime-local", step: 1 })),
    el("label", {}, " metadata ", input("meta", { placeholder: "customer=acme", size: 18 })),
    " ", el("button", {}, "Filter"),
    FILTERS.some((name) => params.get(name)) ? el("button", { type: "button", onclick: () => go(new URLSearchParams()) }, "Clear") : "");
}

async function queueJobs(queue, params) {
  const state = params.get("state") ?? "queued";
  const page = params.get("page") ?? "";
  const filtered = FILTERS.some((name) => params.get(name));
  const query = filterQuery(params, new URLSearchParams({ state: `JOB_STATE_${state.toUpperCase()}`, pageSize: "50" }));
  if (page) query.set("pageToken", page);
  const listed = await api("GET", `/v1/queues/${encodeURIComponent(queue)}/jobs?${query}`);
  const jobs = listed.jobs ?? [];
  const kept = new URLSearchParams([...params].filter(([name]) => FILTERS.includes(name)));
  const withFilters = (s, chosen) => `#/queue/${encodeURIComponent(queue)}?state=${s}${chosen.size ? `&${chosen}` : ""}`;
  const link = (s) => withFilters(s, kept);
  const retryAll = async () => {
    let token = "";
    let retried = 0;
    do { // every page of dead jobs, from the first: each retried job leaves the list
      const dead = await api("GET", `/v1/queues/${encodeURIComponent(queue)}/jobs?state=JOB_STATE_DEAD&pageSize=1000`);
      for (const job of dead.jobs ?? []) await api("POST", `/v1/jobs/${job.id}:retry`);
      retried += (dead.jobs ?? []).length;
      token = (dead.jobs ?? []).length ? dead.nextPageToken : "";
    } while (token);
    return retried;
  };
  return [
    el("h1", {}, `Queue ${queue}`),
    el("div", { class: "toolbar" },
      el("label", {}, "State ",
        el("select", { id: "state", onchange: (e) => { location.hash = link(e.target.value); } },
          ...STATES.map((s) => el("option", s === state ? { value: s, selected: "" } : { value: s }, s)))),
      el("form", { onsubmit: (e) => { e.preventDefault(); location.hash = `#/job/${e.target.elements.id.value.trim()}`; } },
        el("input", { name: "id", placeholder: "a job id", size: 36 }), " ", el("button", {}, "Open")),
      state === "dead" && jobs.length
        ? el("button", { class: "primary", id: "retry-all", onclick: () => act("dead jobs retried", retryAll) }, "Retry all dead")
        : "",
      el("span", { class: "muted" }, `${count(listed.totalSize)} ${state}${filtered ? " (before filters)" : ""}`)),
    el("div", { class: "toolbar" }, filterForm(params, (chosen) => { location.hash = withFilters(state, chosen); })),
    el("table", { id: "jobs" },
      el("thead", {}, el("tr", {}, ...["job", "attempts", "created", "scheduled", "finished", "last error"].map((h) => el("th", {}, h)))),
      el("tbody", {}, jobs.length ? jobs.map((job) => el("tr", { "data-job": job.id },
        el("td", {}, el("a", { href: `#/job/${job.id}` }, job.id)),
        el("td", {}, `${job.attempts ?? 0}/${job.maxAttempts}`),
        el("td", {}, when(job.createTime)), el("td", {}, when(job.scheduleTime)), el("td", {}, when(job.finishTime)),
        el("td", { style: "text-align:left" }, (job.lastError ?? "").split("\n")[0].slice(0, 120)),
      )) : el("tr", {}, el("td", { colspan: 6, class: "muted" },
        filtered && listed.nextPageToken ? `No matching ${state} job on this page: the next page reads on.` : `No ${state} job${filtered ? " matches" : ""}.`)))),
    listed.nextPageToken
      ? el("p", {}, el("a", { href: `${link(state)}&page=${encodeURIComponent(listed.nextPageToken)}` }, "Next page →"))
      : "",
  ];
}

// -- one job ----------------------------------------------------------------------------------

async function jobDetail(id) {
  const { job } = await api("GET", `/v1/jobs/${id}`);
  const finished = ["JOB_STATE_COMPLETED", "JOB_STATE_DEAD", "JOB_STATE_CANCELLED"].includes(job.state);
  const pretty = (value) => el("pre", {}, JSON.stringify(value ?? null, null, 2));
  const fields = [
    ["state", el("span", { class: `badge state-${job.state}`, id: "job-state" }, job.state.replace("JOB_STATE_", ""))],
    ["queue", el("a", { href: `#/queue/${encodeURIComponent(job.queue)}` }, job.queue)],
    ["attempts", `${job.attempts ?? 0} of ${job.maxAttempts}`],
    ["created", when(job.createTime)], ["scheduled", when(job.scheduleTime)],
    ["started", when(job.startTime)], ["finished", when(job.finishTime)],
    ["worker", job.workerId ?? "–"], ["priority", job.priority],
  ];
  if (job.progress) fields.push(["progress", `${job.progress.percent} % ${job.progress.message ?? ""}`]);
  if (job.dependsOn?.length) fields.push(["depends on", job.dependsOn.map((p) => el("div", {}, el("a", { href: `#/job/${p}` }, p)))]);
  return [
    el("h1", {}, `Job ${job.id}`),
    el("div", { class: "toolbar" },
      ["JOB_STATE_DEAD", "JOB_STATE_CANCELLED"].includes(job.state)
        ? el("button", { class: "primary", id: "retry", onclick: () => act(`${job.id} sent back to its queue`, () => api("POST", `/v1/jobs/${job.id}:retry`)) }, "Retry")
        : "",
      finished ? "" : el("button", { class: "danger", id: "cancel", onclick: () => act(`${job.id} cancelled`, () => api("POST", `/v1/jobs/${job.id}:cancel`)) }, "Cancel")),
    el("dl", {}, fields.map(([name, value]) => [el("dt", {}, name), el("dd", {}, value)])),
    el("h2", {}, "Payload"), pretty(job.payload ?? job.payloadBytes ?? {}),
    el("h2", {}, "Result"), pretty(job.result),
    el("h2", {}, `Errors (${(job.errors ?? []).length})`),
    el("div", { id: "errors" }, (job.errors ?? []).map((e) => el("div", { class: "error-entry" },
      el("div", { class: "muted" }, `attempt ${e.attempt}, ${when(e.time)}`), el("pre", {}, e.message)))),
    job.logs?.length ? [el("h2", {}, "Log"), el("pre", {}, job.logs.map((l) => `${when(l.time)}  ${l.line}`).join("\n"))] : "",
    job.metadata ? [el("h2", {}, "Metadata"), pretty(job.metadata)] : "",
  ];
}

// -- schedules --------------------------------------------------------------------------------

async function schedules() {
  const listed = await api("GET", "/v1/schedules?pageSize=1000");
  const rows = (listed.schedules ?? []).map((s) => el("tr", {},
    el("td", {}, s.name), el("td", {}, s.cron ?? `every ${s.every}`), el("td", {}, s.timeZone ?? "UTC"),
    el("td", {}, s.template?.queue ?? ""), el("td", {}, s.paused ? "paused" : when(s.nextRunTime))));
  return [
    el("h1", {}, "Schedules"),
    el("table", { id: "schedules" },
      el("thead", {}, el("tr", {}, ...["name", "when", "zone", "queue", "next run"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No schedule.")))),
  ];
}

// -- routing ----------------------------------------------------------------------------------

async function route() {
  clearTimeout(timer);
  const [path, query] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query ?? "");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  try {
    let content;
    if (parts[0] === "queue") content = await queueJobs(parts[1], params);
    else if (parts[0] === "job") content = await jobDetail(parts.slice(1).join("/"));
    else if (parts[0] === "schedules") content = await schedules();
    else content = await queues();
    view.replaceChildren(...content.flat(Infinity).filter((c) => c !== ""));
    // Live: the queues, and a job until it has ended (a retried job is followed to its end).
    if (!parts.length || (parts[0] === "job" && view.querySelector("#cancel"))) timer = setTimeout(route, REFRESH_MS);
  } catch (error) {
    say(error.message);
  }
}

window.addEventListener("hashchange", () => { say(""); route(); });
route();
