//! What a drill saw and what it means: every client probe and every VIP-holder observation
//! with its time, the timeline of events, and the figures computed from them — the longest
//! client-visible outage, failed probes, the time two nodes held the VIP at once, pass or fail
//! per step. Rendered as a terminal table, JSON, or a self-contained HTML page with a chart.

use std::fmt::Write;

use serde::Serialize;

use super::sampling::WATCH_INTERVAL;

/// One client probe through the VIP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub at_ms: u64,
    /// The node whose name the answer carried, when it carried one.
    pub answered_by: Option<String>,
    pub ok: bool,
}

/// Which nodes had the VIP configured at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Holders {
    pub at_ms: u64,
    pub nodes: Vec<String>,
}

/// A moment in the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub at_ms: u64,
    pub what: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepOutcome {
    pub step: String,
    pub started_ms: u64,
    pub took_ms: u64,
    pub budget_ms: Option<u64>,
    pub passed: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outage {
    /// The longest stretch without a successful answer, from the first failed probe to the
    /// next success.
    pub longest_ms: u64,
    pub failed_probes: usize,
    pub probes: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub cluster: String,
    pub vip: String,
    pub drill: String,
    pub passed: bool,
    pub steps: Vec<StepOutcome>,
    pub events: Vec<Event>,
    pub outage: Outage,
    /// Total time two or more nodes held the VIP at once.
    pub both_held_ms: u64,
    pub probes: Vec<Probe>,
    pub holders: Vec<Holders>,
}

pub fn outage(probes: &[Probe]) -> Outage {
    let mut longest = 0;
    let mut failing_since: Option<u64> = None;
    for p in probes {
        match (p.ok, failing_since) {
            (false, None) => failing_since = Some(p.at_ms),
            (true, Some(since)) => {
                longest = longest.max(p.at_ms - since);
                failing_since = None;
            }
            _ => {}
        }
    }
    if let (Some(since), Some(last)) = (failing_since, probes.last()) {
        longest = longest.max(last.at_ms - since);
    }
    Outage {
        longest_ms: longest,
        failed_probes: probes.iter().filter(|p| !p.ok).count(),
        probes: probes.len(),
    }
}

pub fn both_held(holders: &[Holders]) -> u64 {
    holders
        .windows(2)
        .filter(|w| w[0].nodes.len() >= 2)
        .map(|w| w[1].at_ms - w[0].at_ms)
        .sum()
}

/// Adds the observed moments: a peer declared dead, the VIP appearing on a node, the first
/// answer from a node — each the first time it happened after a change.
pub(super) fn timeline(
    events: &mut Vec<Event>,
    probes: &[Probe],
    holders: &[Holders],
    dead: &[(u64, String, String)],
) {
    let mut reported: Vec<(String, String)> = Vec::new();
    for (at_ms, by, who) in dead {
        if !reported.contains(&(by.clone(), who.clone())) {
            reported.push((by.clone(), who.clone()));
            events.push(Event {
                at_ms: *at_ms,
                what: format!("{by} declared {who} dead"),
            });
        }
    }
    let mut previous: Vec<String> = holders.first().map(|h| h.nodes.clone()).unwrap_or_default();
    for h in holders {
        for n in &h.nodes {
            if !previous.contains(n) {
                events.push(Event {
                    at_ms: h.at_ms,
                    what: format!("VIP up on {n}"),
                });
            }
        }
        previous = h.nodes.clone();
    }
    let mut last: Option<String> = probes.iter().find_map(|p| p.answered_by.clone());
    for p in probes {
        if let Some(n) = &p.answered_by
            && last.as_ref() != Some(n)
        {
            events.push(Event {
                at_ms: p.at_ms,
                what: format!("first answer from {n}"),
            });
            last = Some(n.clone());
        }
    }
    events.sort_by_key(|e| e.at_ms);
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "drill {} on cluster {} (VIP {}): {}",
            self.drill,
            self.cluster,
            self.vip,
            if self.passed { "PASSED" } else { "FAILED" }
        );
        let _ = writeln!(out, "\n{:>9}  EVENT", "T+ms");
        for e in &self.events {
            let _ = writeln!(out, "{:>9}  {}", e.at_ms, e.what);
        }
        let _ = writeln!(
            out,
            "\n{:>9}  {:>8}  {:>8}  {:<6}  STEP",
            "T+ms", "took", "budget", "result"
        );
        for s in &self.steps {
            let budget = s.budget_ms.map(|b| b.to_string()).unwrap_or("-".into());
            let _ = writeln!(
                out,
                "{:>9}  {:>8}  {:>8}  {:<6}  {}{}",
                s.started_ms,
                s.took_ms,
                budget,
                if s.passed { "ok" } else { "FAIL" },
                s.step,
                if s.detail.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", s.detail)
                }
            );
        }
        let _ = writeln!(
            out,
            "\nclient outage: longest {} ms, {} of {} probes failed; VIP seen on two nodes for {} ms (holders sampled every {} ms)",
            self.outage.longest_ms,
            self.outage.failed_probes,
            self.outage.probes,
            self.both_held_ms,
            WATCH_INTERVAL.as_millis()
        );
        out
    }

    /// A self-contained page: the steps, and a chart of every probe coloured by the node that
    /// answered (red: no answer), with the VIP holders beneath and the events marked.
    pub fn html(&self) -> String {
        const PALETTE: [&str; 6] = [
            "#2b7bb9", "#3fa34d", "#8e5ea2", "#e69f00", "#009e91", "#999",
        ];
        let mut nodes: Vec<String> = self
            .probes
            .iter()
            .filter_map(|p| p.answered_by.clone())
            .chain(self.holders.iter().flat_map(|h| h.nodes.clone()))
            .collect();
        nodes.sort();
        nodes.dedup();
        let colour = |node: &str| {
            nodes
                .iter()
                .position(|n| n == node)
                .map(|i| PALETTE[i % PALETTE.len()])
                .unwrap_or("#999")
        };
        let end = self
            .probes
            .last()
            .map(|p| p.at_ms)
            .into_iter()
            .chain(self.holders.last().map(|h| h.at_ms))
            .max()
            .unwrap_or(1)
            .max(1);
        let width = 1000.0;
        let x = |ms: u64| ms as f64 / end as f64 * width;
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="1040" height="190" font-family="sans-serif" font-size="11">"#
        );
        let _ = write!(svg, r#"<text x="0" y="14">client probes</text>"#);
        for p in &self.probes {
            let fill = match (&p.answered_by, p.ok) {
                (_, false) => "#d62728",
                (Some(n), true) => colour(n),
                (None, true) => "#999",
            };
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="20" width="{:.1}" height="40" fill="{fill}"/>"#,
                x(p.at_ms),
                (width / self.probes.len().max(1) as f64).max(1.0)
            );
        }
        let _ = write!(svg, r#"<text x="0" y="84">VIP held by</text>"#);
        for w in self.holders.windows(2) {
            for (j, n) in w[0].nodes.iter().enumerate() {
                let _ = write!(
                    svg,
                    r#"<rect x="{:.1}" y="{}" width="{:.1}" height="14" fill="{}"><title>{n}</title></rect>"#,
                    x(w[0].at_ms),
                    90 + 16 * j,
                    (x(w[1].at_ms) - x(w[0].at_ms)).max(1.0),
                    colour(n)
                );
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            let _ = write!(
                svg,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="18" y2="140" stroke="#000" stroke-dasharray="2,2"/><text x="{0:.1}" y="{1}">{2}</text>"##,
                x(e.at_ms),
                152 + 12 * (i % 3),
                html_escape(&e.what)
            );
        }
        svg.push_str("</svg>");
        let legend: String = nodes
            .iter()
            .map(|n| {
                format!(
                    r#"<span style="background:{};color:#fff;padding:2px 6px;margin-right:6px">{}</span>"#,
                    colour(n),
                    html_escape(n)
                )
            })
            .collect();
        let mut rows = String::new();
        for s in &self.steps {
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.started_ms,
                html_escape(&s.step),
                s.took_ms,
                s.budget_ms.map(|b| b.to_string()).unwrap_or_default(),
                if s.passed {
                    "ok".to_string()
                } else {
                    format!("<b>FAIL</b> {}", html_escape(&s.detail))
                }
            );
        }
        format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><title>hadeploy drill {drill}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px}}</style></head>
<body><h1>Drill {drill} — cluster {cluster}, VIP {vip}: {verdict}</h1>
<p>Client outage: longest <b>{longest} ms</b>, {failed} of {total} probes failed. VIP seen on two nodes for {both} ms (holders sampled every {every} ms).</p>
<p>{legend}<span style="background:#d62728;color:#fff;padding:2px 6px">no answer</span></p>
{svg}
<table><tr><th>T+ms</th><th>step</th><th>took ms</th><th>budget ms</th><th>result</th></tr>{rows}</table>
</body></html>
"#,
            drill = html_escape(&self.drill),
            cluster = html_escape(&self.cluster),
            vip = self.vip,
            verdict = if self.passed { "passed" } else { "FAILED" },
            longest = self.outage.longest_ms,
            failed = self.outage.failed_probes,
            total = self.outage.probes,
            both = self.both_held_ms,
            every = WATCH_INTERVAL.as_millis(),
        )
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(at_ms: u64, by: Option<&str>) -> Probe {
        Probe {
            at_ms,
            answered_by: by.map(String::from),
            ok: by.is_some(),
        }
    }

    #[test]
    fn the_longest_gap_runs_from_the_first_failure_to_the_next_answer() {
        let probes = [
            probe(0, Some("n1")),
            probe(10, None),
            probe(20, None),
            probe(30, Some("n2")),
            probe(40, None),
            probe(50, Some("n2")),
        ];
        assert_eq!(
            outage(&probes),
            Outage {
                longest_ms: 20,
                failed_probes: 3,
                probes: 6
            }
        );
        // Still failing at the end: counted up to the last probe.
        assert_eq!(
            outage(&[probe(0, Some("a")), probe(5, None), probe(95, None)]).longest_ms,
            90
        );
    }

    #[test]
    fn double_holding_is_summed() {
        let h = |at_ms, nodes: &[&str]| Holders {
            at_ms,
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
        };
        let holders = [
            h(0, &["a"]),
            h(100, &["a", "b"]),
            h(250, &["b"]),
            h(300, &["a", "b"]),
            h(320, &["a"]),
        ];
        assert_eq!(both_held(&holders), 170);
    }

    #[test]
    fn the_timeline_marks_each_change_once_in_time_order() {
        let holders = [
            Holders {
                at_ms: 0,
                nodes: vec!["n1".into()],
            },
            Holders {
                at_ms: 300,
                nodes: vec!["n2".into()],
            },
        ];
        let probes = [
            probe(0, Some("n1")),
            probe(100, None),
            probe(350, Some("n2")),
        ];
        let dead = [
            (200, "n2".to_string(), "n1".to_string()),
            (310, "n2".to_string(), "n1".to_string()),
        ];
        let mut events = vec![Event {
            at_ms: 50,
            what: "pull n1 (stop) issued".into(),
        }];
        timeline(&mut events, &probes, &holders, &dead);
        let seen: Vec<(u64, &str)> = events.iter().map(|e| (e.at_ms, e.what.as_str())).collect();
        assert_eq!(
            seen,
            [
                (50, "pull n1 (stop) issued"),
                (200, "n2 declared n1 dead"),
                (300, "VIP up on n2"),
                (350, "first answer from n2"),
            ]
        );
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_names() {
        let report = Report {
            cluster: "web<1>".into(),
            vip: "10.0.0.100".into(),
            drill: "kill".into(),
            passed: true,
            steps: vec![],
            events: vec![Event {
                at_ms: 5,
                what: "pull issued".into(),
            }],
            outage: Outage::default(),
            both_held_ms: 0,
            probes: vec![probe(0, Some("n1")), probe(10, None)],
            holders: vec![],
        };
        let page = report.html();
        assert!(page.contains("web&lt;1&gt;") && !page.contains("web<1>"));
        assert!(page.contains("<svg"));
        // Nothing fetched from elsewhere: the page works from a mail attachment.
        assert!(!page.contains("src=") && !page.contains("<link") && !page.contains("href="));
    }
}
