import { badge, duration, html, page, shortImage, time, value, type Html } from './html.js';
import type { DeploymentRow, RevertView, RuleState, ServiceView, StatusView, WatchView } from './view.js';

/**
 * A deployment's number, linked to its page; a negative one is provisional (the deployment was
 * detected while the store was unreachable) and has no page yet.
 */
export function deploymentRef(id: number, prefix = ''): Html {
  if (id < 0) return html`${prefix}#${id} <span class="none">(not yet recorded; store unreachable)</span>`;
  return html`<a href="/deployments/${id}">${prefix}#${id}</a>`;
}

function version(ref: string | null | undefined, image: string | null | undefined): Html {
  if (!ref && !image) return html`<span class="none">unknown</span>`;
  return html`<code>${ref ?? ''}</code>${image ? html` <span class="none">(${shortImage(image)})</span>` : ''}`;
}

function leadership(s: ServiceView, instance: string | null): Html {
  if (s.leader === true) return html`${badge('leader')} this instance${instance ? html` (<code>${instance}</code>)` : ''} watches and reverts it`;
  if (s.leader === false) {
    return s.leader_instance
      ? html`<span class="badge muted">follower</span> led by <code>${s.leader_instance}</code>`
      : html`<span class="badge muted">follower</span> no instance leads it now`;
  }
  return html`<span class="none">unknown</span>`;
}

function holdBox(s: ServiceView): Html | false {
  const h = s.hold;
  if (!h) return false;
  const what = h.kind === 'freeze' ? 'Migration freeze' : 'Hold';
  return html`<div class="hold" data-hold="${h.kind}"><strong>${what}</strong>: automatic reverts paused${h.deployment_id ? html` for deployment ${deploymentRef(h.deployment_id)}` : ''}${h.until ? html` until ${time(h.until)}` : h.kind === 'freeze' ? ' until an operator releases it' : ''}. Reason: <span class="reason">${h.reason}</span></div>`;
}

function ruleRow(r: RuleState): Html {
  const state = r.result ?? 'pending';
  return html`<tr data-rule="${r.name}" data-result="${state}">
<td>${r.name}</td><td><code>${r.signal}</code></td>
<td class="num">${r.last ? value(r.last.value) : html`<span class="none">not sampled yet</span>`}</td>
<td>${r.threshold}</td>
<td>${r.result ? badge(r.result) : html`<span class="badge muted">pending</span>`}</td>
<td class="num">${r.streak} / ${r.for}</td><td>${r.action} (${r.severity})</td></tr>`;
}

/** How far through its window a watch is, from its start and window length (or end). */
export function watchProgress(w: WatchView, now: Date): { elapsedMs: number; windowMs: number; percent: number } | undefined {
  const start = w.started_at ? new Date(w.started_at).getTime() : NaN;
  const end = w.window_ends_at ? new Date(w.window_ends_at).getTime() : NaN;
  const windowMs = w.window_ms ?? end - start;
  if (!Number.isFinite(start) || !Number.isFinite(windowMs) || windowMs <= 0) return undefined;
  const elapsedMs = Math.min(Math.max(0, now.getTime() - start), windowMs);
  return { elapsedMs, windowMs, percent: Math.round((elapsedMs / windowMs) * 100) };
}

function watchSection(w: WatchView, now: Date): Html {
  const p = watchProgress(w, now);
  return html`<section class="watch" data-deployment="${w.deployment}">
<h3>Watching ${deploymentRef(w.deployment, 'deployment ')}: <code>${w.from_ref ?? 'unknown'}</code> → <code>${w.to_ref}</code> ${badge(w.state)}</h3>
${p
    ? html`<p class="progress-text" data-percent="${p.percent}">${p.percent}% of the window: ${duration(p.elapsedMs)} of ${duration(p.windowMs)}, ${w.samples} samples; ends ${time(w.window_ends_at)}</p>
<div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${p.percent}"><div style="width:${p.percent}%"></div></div>`
    : html`<p>${w.samples} samples; window ends ${time(w.window_ends_at)}</p>`}
<table class="rules"><thead><tr><th>Rule</th><th>Signal</th><th>Last value</th><th>Threshold</th><th>State</th><th>Streak / for</th><th>Action</th></tr></thead>
<tbody>${w.rules.map(ruleRow)}</tbody></table>
</section>`;
}

function revertSection(r: RevertView): Html {
  return html`<section class="revert" data-deployment="${r.deployment}" data-phase="${r.phase}">
<h3>Reverting ${deploymentRef(r.deployment, 'deployment ')} (phase ${r.phase})${r.attempts > 0 ? html`, attempt ${r.attempts}` : ''}: <code>${r.to_ref}</code> → <code>${r.from_ref ?? 'the known-good version'}</code> ${badge('rolling_back')}</h3>
</section>`;
}

/** What the card says when no deployment is watched here: a revert runs, another instance watches, or nothing does. */
function notWatched(s: ServiceView): Html {
  if (s.revert) return revertSection(s.revert);
  if (s.leader === false) {
    return s.leader_instance
      ? html`<p class="no-watch follower">Watched by instance <code>${s.leader_instance}</code>; this instance follows and shows what runs here.</p>`
      : html`<p class="no-watch follower">No instance leads this service now; deployments are not being watched until one takes over.</p>`;
  }
  return html`<p class="no-watch none">No deployment being watched.</p>`;
}

function serviceCard(name: string, s: ServiceView, status: StatusView, now: Date): Html {
  return html`<article class="service" data-service="${name}">
<h2>${name}</h2>
<dl class="facts">
<dt>Current version</dt><dd class="current">${version(s.ref, s.image)}${s.replicas > 1 ? ` on ${s.replicas} replicas` : ''}</dd>
<dt>Known-good</dt><dd class="known-good">${s.known_good ? html`${version(s.known_good.ref, s.known_good.image)}${s.known_good.since ? html` since ${time(s.known_good.since)}` : ''}` : html`<span class="none">none recorded</span>`}</dd>
<dt>Leadership</dt><dd class="leadership">${leadership(s, status.instance)}</dd>
</dl>
${holdBox(s)}
${s.watch ? watchSection(s.watch, now) : notWatched(s)}
</article>`;
}

function deploymentsTable(rows: readonly DeploymentRow[] | undefined): Html {
  if (!rows) return html`<p class="store-down" role="alert">Deployments unavailable: the store is not answering. The services above are shown from memory.</p>`;
  if (!rows.length) return html`<p class="none">No deployments recorded yet.</p>`;
  return html`<table class="deployments"><thead><tr><th>#</th><th>Service</th><th>From → to</th><th>Outcome</th><th>Reason</th><th>Started</th><th>Decided</th></tr></thead><tbody>
${rows.map((d) => html`<tr data-deployment="${d.id}"><td>${deploymentRef(d.id)}</td><td>${d.service}</td>
<td><code>${d.from_ref ?? 'unknown'}</code> → <code>${d.to_ref}</code></td><td>${badge(d.state)}${d.dry_run ? ' (dry run)' : ''}</td>
<td class="reason">${d.reason ?? ''}</td><td>${time(d.started_at)}</td><td>${time(d.decided_at)}</td></tr>`)}
</tbody></table>`;
}

/** The daemon's header line: instance, policy, Docker, dry run. */
export function headerLine(status: StatusView, title: Html): Html {
  return html`<h1>${title}</h1><p class="meta">${status.instance ? html`<span>instance <code>${status.instance}</code></span>` : ''}<span>${status.activeWatches} active watch${status.activeWatches === 1 ? '' : 'es'}</span><span>Docker ${status.dockerConnected ? 'connected' : 'reconnecting'}</span>${status.policy ? html`<span>policy <code>${status.policy}</code></span>` : ''}${status.dryRun ? html`<span><strong>dry run</strong>: nothing is reverted</span>` : ''}</p>`;
}

/**
 * `/`: every service (versions, leadership, holds, the active watch or revert) and the latest
 * deployments; `deployments` undefined when the store did not answer (the rest comes from memory).
 */
export function renderHome(status: StatusView, deployments: readonly DeploymentRow[] | undefined, now: Date): string {
  const names = Object.keys(status.services).sort();
  const main = html`<section class="services">${names.length ? names.map((n) => serviceCard(n, status.services[n] as ServiceView, status, now)) : html`<p class="none">The policy names no services.</p>`}</section>
<section><h2>Latest deployments</h2>${deploymentsTable(deployments)}</section>`;
  return page('rollguard status', headerLine(status, html`<a href="/">rollguard</a> status`), main, { live: true, generatedAt: now });
}
