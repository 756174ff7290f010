//! `/`: the dashboard, one server-rendered HTML page. No JavaScript, no
//! build step, nothing loaded from elsewhere; it reloads itself with
//! `<meta http-equiv="refresh">` and its cards stack on a phone. Every server card carries `data-server`,
//! `data-kind` and `data-state="up|down"` for scripts and tests.

use crate::backups::{BackupSummary, BackupView};
use crate::duration::format_secs;
use crate::human_bytes;
use crate::monitor::Snapshot;
use crate::status::Severity;
use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `HH:MM:SS UTC` of a Unix time.
fn clock(unix: f64) -> String {
    let s = unix as u64 % 86400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, (s % 3600) / 60, s % 60)
}

/// The page's whole style sheet, inline; the Content-Security-Policy
/// allows exactly this text by its hash ([`crate::browser`]).
pub(crate) const STYLE: &str = r#"
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;color:var(--fg);background:var(--bg)}
header{padding:12px 16px;background:#fff;border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0}h2{font-size:17px;margin:20px 16px 8px}
header p{margin:2px 0 0;color:var(--muted);font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px;padding:0 16px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 14px;overflow-wrap:anywhere}
.card[data-state=down]{border-color:var(--bad);border-width:2px}
.card h3{margin:0 0 4px;font-size:16px;display:flex;justify-content:space-between;gap:8px;align-items:center}
.badge{font-size:12px;font-weight:700;padding:2px 8px;border-radius:10px;color:#fff}
.badge.up{background:var(--ok)}.badge.down{background:var(--bad)}.badge.warn{background:var(--warn)}
.target{color:var(--muted);font-size:12px;margin:0 0 8px;font-family:ui-monospace,monospace}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:0 0 8px}dt{color:var(--muted)}dd{margin:0}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{text-align:left;padding:3px 6px;border-top:1px solid var(--line)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
ul.problems{list-style:none;margin:0 16px;padding:0}
ul.problems li{background:#fff;border-left:4px solid var(--warn);padding:8px 10px;margin-bottom:6px;border-radius:4px;overflow-wrap:anywhere}
ul.problems li.critical{border-left-color:var(--bad)}
.sev{font-weight:700;text-transform:uppercase;font-size:11px;margin-right:6px}
li.critical .sev{color:var(--bad)}li.warning .sev{color:var(--warn)}
.none{margin:0 16px;color:var(--ok)}
.error{color:var(--bad)}
.wrap{padding:0 16px;overflow-x:auto}
footer{margin:24px 16px;color:var(--muted);font-size:13px}
footer a{color:inherit}
"#;

/// Renders the dashboard.
pub fn render(snap: &Snapshot) -> String {
    let problems = snap.problems();
    let mut h = String::with_capacity(16 * 1024);
    let title = if problems.is_empty() {
        "pgharbor — all good".to_owned()
    } else {
        format!("pgharbor — {} problem(s)", problems.len())
    };
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"{}\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        snap.refresh_seconds,
        escape(&title)
    );
    let _ = writeln!(
        h,
        "<header><h1>pgharbor</h1><p>Collected {} · refreshes every {} s</p></header>",
        clock(snap.generated_at),
        snap.refresh_seconds
    );

    let _ = write!(
        h,
        "<section id=\"problems\"><h2>Problems ({})</h2>",
        problems.len()
    );
    if problems.is_empty() {
        h.push_str("<p class=\"none\">No problems.</p>");
    } else {
        h.push_str("<ul class=\"problems\">");
        for (server, p) in &problems {
            let class = match p.severity {
                Severity::Critical => "critical",
                Severity::Warning => "warning",
            };
            let _ = write!(
                h,
                "<li class=\"{class}\" data-server=\"{}\"><span class=\"sev\">{class}</span><strong>{}</strong> · {}: {}</li>",
                escape(server),
                escape(server),
                escape(p.section),
                escape(&p.message)
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>\n<section id=\"servers\"><h2>Servers</h2><div class=\"cards\">\n");

    for p in &snap.postgres {
        card_start(&mut h, &p.name, "postgresql", p.up, &p.target);
        match &p.status {
            None => {
                let _ = write!(
                    h,
                    "<p class=\"error\">{}</p>",
                    escape(p.error.as_deref().unwrap_or("no answer"))
                );
            }
            Some(st) => {
                h.push_str("<dl>");
                if let Some(srv) = &st.server {
                    let version = srv
                        .version
                        .split(" on ")
                        .next()
                        .unwrap_or(&srv.version)
                        .to_owned();
                    dl(&mut h, "version", &version);
                    dl(&mut h, "uptime", &format_secs(srv.uptime_seconds));
                    dl(
                        &mut h,
                        "role",
                        if srv.in_recovery {
                            "standby (in recovery)"
                        } else {
                            "primary"
                        },
                    );
                }
                if let Some(c) = &st.connections {
                    dl(
                        &mut h,
                        "connections",
                        &format!("{} of {} ({:.0}%)", c.total, c.max_connections, c.used_pct),
                    );
                }
                if let Some(t) = st.longest_transaction_seconds {
                    dl(&mut h, "longest transaction", &format_secs(t));
                }
                if let Some(w) = st.wraparound.as_ref().and_then(|w| w.first()) {
                    dl(
                        &mut h,
                        "oldest xid age",
                        &format!("{} ({}, {:.2}%)", w.xid_age, w.database, w.pct_of_limit),
                    );
                }
                if let Some(c) = st.cache_hit.as_ref().and_then(|c| c.overall) {
                    dl(&mut h, "cache hit", &format!("{:.1}%", c * 100.0));
                }
                let _ = write!(h, "</dl>");
                if let Some(dbs) = &st.databases {
                    h.push_str("<table><thead><tr><th>database</th><th class=\"num\">size</th></tr></thead><tbody>");
                    for d in dbs {
                        let _ = write!(
                            h,
                            "<tr data-database=\"{}\"><td>{}</td><td class=\"num\">{}</td></tr>",
                            escape(&d.database),
                            escape(&d.database),
                            d.size_bytes
                                .map(|b| human_bytes(b as f64))
                                .unwrap_or_else(|| "not visible".to_owned())
                        );
                    }
                    h.push_str("</tbody></table>");
                }
                for nv in &st.not_visible {
                    let _ = write!(
                        h,
                        "<p class=\"target\">not visible: {}: {}</p>",
                        escape(nv.section),
                        escape(&nv.reason)
                    );
                }
            }
        }
        h.push_str("</article>\n");
    }
    for r in &snap.redis {
        card_start(&mut h, &r.name, "redis", r.up, &r.target);
        match &r.status {
            None => {
                let _ = write!(
                    h,
                    "<p class=\"error\">{}</p>",
                    escape(r.error.as_deref().unwrap_or("no answer"))
                );
            }
            Some(st) => {
                h.push_str("<dl>");
                if let Some(v) = &st.version {
                    dl(&mut h, "version", &format!("Redis {v}"));
                }
                if let Some(u) = st.uptime_seconds {
                    dl(&mut h, "uptime", &format_secs(u));
                }
                if let Some(m) = &st.memory {
                    let limit = if m.max_bytes > 0.0 {
                        format!(
                            "{} of {} ({:.0}%)",
                            human_bytes(m.used_bytes),
                            human_bytes(m.max_bytes),
                            m.used_pct.unwrap_or(0.0)
                        )
                    } else {
                        format!("{} (no maxmemory)", human_bytes(m.used_bytes))
                    };
                    dl(&mut h, "memory", &limit);
                    dl(&mut h, "eviction", &m.eviction_policy);
                }
                if let Some(c) = &st.clients {
                    dl(&mut h, "clients", &format!("{}", c.connected));
                }
                if let Some(rep) = &st.replication {
                    dl(&mut h, "role", &rep.role);
                }
                for k in &st.keyspace {
                    dl(&mut h, &k.db, &format!("{} keys", k.keys));
                }
                h.push_str("</dl>");
            }
        }
        h.push_str("</article>\n");
    }
    h.push_str("</div></section>\n");

    if !snap.backups.is_empty() {
        backups_table(&mut h, &snap.backups);
    }
    h.push_str("<footer><a href=\"/metrics\">/metrics</a> · <a href=\"/api/status\">/api/status</a> · <a href=\"/healthz\">/healthz</a></footer>\n</body></html>\n");
    h
}

/// The backups section: per destination its health, the last good and
/// last verified backup with their ages, and the count per state.
fn backups_table(h: &mut String, backups: &[BackupView]) {
    h.push_str("<section id=\"backups\"><h2>Backups</h2><div class=\"wrap\"><table><thead><tr>\
<th>name</th><th>state</th><th>last good backup</th><th class=\"num\">size</th><th class=\"num\">took</th>\
<th>last verified</th><th>backups</th><th>destination</th></tr></thead><tbody>");
    for b in backups {
        let ago = |s: Option<&BackupSummary>| {
            s.map_or_else(
                || "none".to_owned(),
                |s| format!("{} ({} ago)", s.id, format_secs(s.age_seconds)),
            )
        };
        let (size, took) = b.last_good.as_ref().map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |g| {
                (
                    human_bytes(g.size as f64),
                    g.duration_seconds
                        .map_or_else(|| "-".to_owned(), format_secs),
                )
            },
        );
        let c = b.counts;
        let counts = if b.readable {
            format!(
                "{} verified, {} complete, {} failed, {} corrupt",
                c.verified, c.complete, c.failed, c.corrupt
            )
        } else {
            format!("unreadable: {}", b.error.as_deref().unwrap_or("no answer"))
        };
        let health = b.health();
        let _ = write!(
            h,
            "<tr data-backup=\"{}\" data-state=\"{health}\"><td>{}</td><td><span class=\"badge {}\">{}</span></td>\
<td>{}</td><td class=\"num\">{size}</td><td class=\"num\">{took}</td><td>{}</td><td>{}</td><td class=\"target\">{}</td></tr>",
            escape(&b.name),
            escape(&b.name),
            match health {
                "ok" => "up",
                "warning" => "warn",
                _ => "down",
            },
            health.to_uppercase(),
            escape(&ago(b.last_good.as_ref())),
            escape(&ago(b.last_verified.as_ref())),
            escape(&counts),
            escape(&b.dest)
        );
    }
    h.push_str("</tbody></table></div></section>\n");
}

fn card_start(h: &mut String, name: &str, kind: &str, up: bool, target: &str) {
    let state = if up { "up" } else { "down" };
    let _ = write!(
        h,
        "<article class=\"card\" data-server=\"{}\" data-kind=\"{kind}\" data-state=\"{state}\">\
<h3><span>{} <small>{}</small></span><span class=\"badge {state}\">{}</span></h3><p class=\"target\">{}</p>",
        escape(name),
        escape(name),
        if kind == "redis" { "Redis" } else { "PostgreSQL" },
        state.to_uppercase(),
        escape(target)
    );
}

fn dl(h: &mut String, term: &str, value: &str) {
    let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", escape(term), escape(value));
}
