//! Drawing the live view. Fits 80x24: a title line, the associations (two
//! lines each: initiator, responder), the selected association's paths, the
//! event log and a two-line footer. ratatui only writes the cells that
//! changed, so a redraw never flickers.

use std::time::Instant;

use ratatui::{
    Frame,
    layout::{Alignment, Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span, Text},
    widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState, Wrap},
};

use super::{
    client::{Assoc, Path},
    state::{App, Mode, addr_groups, assoc_rtt, fmt_age, fmt_rate, fmt_rtt, hms, sparkline, unix_now},
};

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let [title, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(2)]).areas(area);
    draw_title(f, app, title);
    draw_footer(f, app, footer);
    if app.snapshot.is_none() {
        draw_unreachable(f, app, body);
        return;
    }
    match app.mode {
        Mode::Detail if app.selected_assoc().is_some() => draw_detail(f, app, body),
        _ => draw_main(f, app, body),
    }
}

fn draw_title(f: &mut Frame, app: &App, area: Rect) {
    let mut spans =
        vec![Span::styled(" sctp-monitor top ", Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED))];
    spans.push(Span::raw(format!(" {} ", app.url)));
    if app.connected {
        if let Some(s) = &app.snapshot {
            let ifs: Vec<&str> = s.status.interfaces.iter().map(|i| i.name.as_str()).collect();
            spans.push(Span::raw(format!(
                "agent {} on {}",
                s.status.version,
                if ifs.is_empty() { "-".into() } else { ifs.join(",") }
            )));
            spans.push(Span::styled(format!("  {}", hms(&s.assocs.generated)), Style::new().fg(Color::DarkGray)));
        }
    } else if app.snapshot.is_some() {
        spans.push(Span::styled(
            "AGENT UNREACHABLE: data is stale",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    } else if app.error.is_some() {
        spans.push(Span::styled("AGENT UNREACHABLE", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)));
    } else {
        spans.push(Span::styled("connecting...", Style::new().fg(Color::Yellow)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_unreachable(f: &mut Frame, app: &App, area: Rect) {
    let err = app.error.clone().unwrap_or_else(|| "waiting for the first answer".into());
    if app.url == super::IN_PROCESS {
        f.render_widget(Paragraph::new(format!("The agent in this process: {err}")).alignment(Alignment::Center), area);
        return;
    }
    let text = Text::from(vec![
        Line::styled(
            format!("Cannot reach the sctp-monitor agent at {}", app.url),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Line::raw(""),
        Line::raw(err),
        Line::raw(""),
        Line::raw("Is an agent running with its API on that address? Start one with"),
        Line::raw("  sudo sctp-monitor run --metrics 127.0.0.1:9108"),
        Line::raw("or point `sctp-monitor top --connect URL` at it. Retrying every second."),
    ]);
    let h = 9u16.min(area.height);
    let [_, mid, _] = Layout::vertical([Constraint::Fill(1), Constraint::Length(h), Constraint::Fill(1)]).areas(area);
    f.render_widget(Paragraph::new(text).alignment(Alignment::Center).wrap(Wrap { trim: true }), mid);
}

fn state_short(s: &str) -> &str {
    match s {
        "established" => "ESTAB",
        "cookie_wait" => "COOKIE-W",
        "cookie_echoed" => "COOKIE-E",
        "shutdown_pending" => "SHUT-PEND",
        "shutdown_ack_sent" => "SHUT-ACK",
        o => o,
    }
}

fn path_state_style(s: &str) -> Style {
    match s {
        "down" => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        "potentially_failed" => Style::new().fg(Color::Yellow),
        "active" => Style::new().fg(Color::Green),
        _ => Style::new(),
    }
}

fn section(title: String) -> Block<'static> {
    Block::new().borders(Borders::TOP).title(title).border_style(Style::new().fg(Color::DarkGray))
}

fn draw_main(f: &mut Frame, app: &App, area: Rect) {
    let npaths = app.selected_assoc().map_or(1, |a| a.paths.len().max(1)) as u16;
    let paths_h = (npaths + 2).min(6);
    // associations: two lines each, at most half the screen; the log takes the rest
    let rows_h: u16 = app.visible().iter().map(|a| assoc_row_height(a)).sum::<u16>().max(2);
    let assocs_h = (2 + rows_h).clamp(4, (area.height / 2).max(4));
    let [assocs, paths, log] =
        Layout::vertical([Constraint::Length(assocs_h), Constraint::Length(paths_h), Constraint::Min(3)]).areas(area);
    draw_assocs(f, app, assocs);
    match app.selected_assoc() {
        Some(a) => draw_paths(f, app, a, paths, false),
        None => f.render_widget(Paragraph::new("").block(section(" paths ".into())), paths),
    }
    draw_log(f, app, log, None);
}

/// Lines of an association's row: its initiator's address families, then
/// its responder's (each family on its own line, so IPv4 and IPv6 both fit).
fn assoc_row_height(a: &Assoc) -> u16 {
    (addr_groups(&a.initiator.addrs).len() + addr_groups(&a.responder.addrs).len()) as u16
}

fn draw_assocs(f: &mut Frame, app: &App, area: Rect) {
    let vis = app.visible();
    let total = app.snapshot.as_ref().map_or(0, |s| s.assocs.count);
    let mut title = format!(" associations {}/{} sort:{} ", vis.len(), total, app.sort.name());
    if !app.filter.is_empty() {
        title += &format!("filter:\"{}\" ", app.filter);
    }
    let now = Instant::now();
    let unix = unix_now();
    let header =
        Row::new(["ID", "Port", "Initiator/Responder addrs", "State", "Primary (to)", "RTT", "DATA", "FO", "Age"])
            .style(Style::new().add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = vis
        .iter()
        .map(|a| {
            let prim =
                |p: &Option<super::client::PathRef>| p.as_ref().map_or("-".to_string(), |p| format!(">{}", p.dst));
            let (ia, ra) = (addr_groups(&a.initiator.addrs), addr_groups(&a.responder.addrs));
            let mut addrs: Vec<Line> = Vec::new();
            for (tag, groups) in [("I", &ia), ("R", &ra)] {
                for (i, g) in groups.iter().enumerate() {
                    addrs.push(Line::raw(format!("{} {g}", if i == 0 { tag } else { " " })));
                }
            }
            // the initiator's value on its first line, the responder's on its own
            let two = |x: String, y: String| {
                let mut l = vec![Line::raw(x)];
                l.resize(ia.len(), Line::raw(""));
                l.push(Line::raw(y));
                Cell::from(Text::from(l))
            };
            Row::new(vec![
                Cell::from(format!("{}", a.id)),
                two(a.initiator.port.to_string(), a.responder.port.to_string()),
                Cell::from(Text::from(addrs)),
                // the state, and under it the upper-layer protocols (PPIDs)
                two(state_short(&a.state).to_string(), a.protocols()),
                two(prim(&a.primary.initiator), prim(&a.primary.responder)),
                Cell::from(assoc_rtt(a).map_or("-".into(), fmt_rtt)),
                Cell::from(fmt_rate(app.assoc_rate(a))),
                two(a.failovers.initiator.to_string(), a.failovers.responder.to_string()),
                Cell::from(app.age_secs(a, unix, now).map_or("-".into(), fmt_age)),
            ])
            .height(assoc_row_height(a))
        })
        .collect();
    let widths = [
        Constraint::Length(3),
        Constraint::Length(5),
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Length(15),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(3),
        Constraint::Length(5),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(section(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut st = TableState::default().with_selected(app.selected_index(&vis));
    if vis.is_empty() {
        let msg = if total == 0 {
            "no SCTP association seen yet"
        } else {
            "no association matches the filter (Esc clears it)"
        };
        let [t, m] = Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(area);
        f.render_stateful_widget(table, t, &mut st);
        f.render_widget(Paragraph::new(msg).style(Style::new().fg(Color::DarkGray)), m);
    } else {
        f.render_stateful_widget(table, area, &mut st);
    }
}

fn path_rows<'a>(app: &'a App, a: &'a Assoc, spark_w: usize, bytes: bool) -> Vec<Row<'a>> {
    let mut paths: Vec<&Path> = a.paths.iter().collect();
    // initiator's paths first, each direction's primary first
    paths.sort_by(|x, y| (&x.sender, !x.primary, &x.src, &x.dst).cmp(&(&y.sender, !y.primary, &y.src, &y.dst)));
    paths
        .into_iter()
        .map(|p: &Path| {
            let rate = app.path_rate(a.id, p);
            let dir = if p.sender == "initiator" { "I>R" } else { "R>I" };
            let mut cells = vec![
                Cell::from(if p.primary { "*" } else { " " }),
                Cell::from(dir),
                Cell::from(format!("{} > {}", p.src, p.dst)),
                Cell::from(if p.state == "unconfirmed" { "unconf".to_string() } else { p.state.clone() })
                    .style(path_state_style(&p.state)),
                Cell::from(p.rtt_us.map_or("-".into(), fmt_rtt)),
                Cell::from(p.unanswered_heartbeats.to_string()),
                Cell::from(fmt_rate(rate.map_or(0.0, |r| r.current()))),
                Cell::from(p.retransmissions.to_string()),
            ];
            if bytes {
                cells.push(Cell::from(p.data_bytes.to_string()));
            }
            cells.push(
                Cell::from(rate.map_or(String::new(), |r| sparkline(&r.history, spark_w)))
                    .style(Style::new().fg(Color::Cyan)),
            );
            Row::new(cells)
        })
        .collect()
}

fn draw_paths(f: &mut Frame, app: &App, a: &Assoc, area: Rect, detail: bool) {
    // the detail's Bytes column takes from the sparkline, so an IPv6 path still fits 80 columns
    let spark_w = if detail { 6 } else { 10 };
    let mut head = vec!["P", "Dir", "Path (src > dst)", "State", "RTT", "HB", "DATA", "Retx"];
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(2),
        Constraint::Length(6),
        Constraint::Length(4),
    ];
    if detail {
        head.push("Bytes");
        widths.push(Constraint::Length(8));
    }
    head.push("Rate");
    widths.push(Constraint::Length(spark_w as u16));
    let table = Table::new(path_rows(app, a, spark_w, detail), widths)
        .header(Row::new(head).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(section(format!(" #{} paths (* primary, HB unanswered heartbeats) ", a.id)));
    f.render_widget(table, area);
}

fn draw_log(f: &mut Frame, app: &App, area: Rect, only: Option<u64>) {
    let h = area.height.saturating_sub(1) as usize;
    let tag = only.map(|id| format!(" #{id} "));
    let lines: Vec<&String> = app.log.iter().filter(|l| tag.as_ref().is_none_or(|t| l.contains(t.as_str()))).collect();
    let end = lines.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(h);
    let text: Vec<Line> = lines[start..end]
        .iter()
        .map(|l| {
            let agent_line = l.get(8..15) == Some(" agent ");
            let style = if agent_line && !l.contains(" agent warning: ") && !l.contains(" agent error: ") {
                Style::new().fg(Color::DarkGray)
            } else if agent_line
                || l.contains(" failover ")
                || l.contains(" path_down ")
                || l.contains("association_down")
            {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            };
            Line::styled(l.as_str(), style)
        })
        .collect();
    let title = if app.log_scroll > 0 {
        format!(" events (scrolled back {}, End follows) ", app.log_scroll)
    } else {
        " events ".into()
    };
    f.render_widget(Paragraph::new(text).block(section(title)), area);
}

fn draw_detail(f: &mut Frame, app: &App, area: Rect) {
    let Some(a) = app.selected_assoc() else {
        return;
    };
    let npaths = a.paths.len().max(1) as u16;
    let [info, paths, quality, log] = Layout::vertical([
        Constraint::Length(9),
        Constraint::Length((npaths + 2).min(10)),
        Constraint::Length((npaths + 2).min(10)),
        Constraint::Fill(1),
    ])
    .areas(area);
    let vtag = |v: Option<u32>| v.map_or("-".into(), |v| format!("0x{v:08x}"));
    let opt = |v: Option<u32>| v.map_or("-".into(), |v| v.to_string());
    let prim =
        |p: &Option<super::client::PathRef>| p.as_ref().map_or("-".to_string(), |p| format!("{} > {}", p.src, p.dst));
    let age = app.age_secs(a, unix_now(), Instant::now()).map_or("-".into(), fmt_age);
    let lines = vec![
        Line::raw(format!(
            "state {}  age {}  last packet {}  handshake {}{}",
            a.state,
            age,
            hms(&a.last_seen),
            if a.handshake_seen { "seen" } else { "not seen (mid-flight)" },
            a.restart_of.map_or(String::new(), |r| format!("  restart of #{r}"))
        )),
        Line::raw(format!(
            "initiator port {} vtag {} addrs {}",
            a.initiator.port,
            vtag(a.initiator.vtag),
            a.initiator.addrs.join(", ")
        )),
        Line::raw(format!(
            "responder port {} vtag {} addrs {}",
            a.responder.port,
            vtag(a.responder.vtag),
            a.responder.addrs.join(", ")
        )),
        Line::raw(format!("I>R primary {}  failovers {}", prim(&a.primary.initiator), a.failovers.initiator)),
        Line::raw(format!("R>I primary {}  failovers {}", prim(&a.primary.responder), a.failovers.responder)),
        Line::raw(format!(
            "TSN I>R {} ack {}  R>I {} ack {}",
            opt(a.highest_tsn.initiator),
            opt(a.cum_ack.initiator),
            opt(a.highest_tsn.responder),
            opt(a.cum_ack.responder)
        )),
        Line::raw(format!(
            "protocols (PPID) {}",
            if a.ppids.is_empty() {
                "none seen yet".to_string()
            } else {
                a.ppids.iter().map(|p| format!("{} {}", p.label(), p.id)).collect::<Vec<_>>().join(", ")
            }
        )),
        Line::raw(format!(
            "chunks {}",
            if a.chunks.is_empty() {
                "-".to_string()
            } else {
                let mut c: Vec<_> = a.chunks.iter().collect();
                c.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
                c.iter().map(|(t, n)| format!("{t} {n}")).collect::<Vec<_>>().join(", ")
            }
        )),
    ];
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(section(format!(" association #{} (Enter/Esc: back) ", a.id))),
        info,
    );
    draw_paths(f, app, a, paths, true);
    draw_quality(f, a, quality);
    draw_log(f, app, log, Some(a.id));
}

/// One line per path of what it lost and what its receiver said.
fn draw_quality(f: &mut Frame, a: &Assoc, area: Rect) {
    let lines: Vec<Line> = a
        .paths
        .iter()
        .map(|p| {
            let dir = if p.sender == "initiator" { "I>R" } else { "R>I" };
            let loss = if p.data_chunks > 0 {
                format!("{:.1}%", 100.0 * p.lost_chunks as f64 / p.data_chunks as f64)
            } else {
                "-".into()
            };
            let win = match (p.a_rwnd, p.a_rwnd_min) {
                (Some(w), Some(m)) => format!("win {w} min {m}"),
                _ => "win -".into(),
            };
            let q = |x: f64| match p.rtt_histogram.quantile_bound_us(x) {
                Some(us) if us < 1_000 => format!("≤{us}µs"),
                Some(us) => format!("≤{}ms", us as f64 / 1e3),
                None if p.rtt_histogram.counts.iter().any(|&c| c > 0) => {
                    format!(">{}ms", p.rtt_histogram.bounds_us.last().map_or(0.0, |&b| b as f64 / 1e3))
                }
                None => "-".into(),
            };
            let rtt = format!("rtt p50 {} p99 {}", q(0.5), q(0.99));
            let text = format!(
                "{dir} {} > {}  lost {}/{} {loss}  gaps {} dups {}  {win}  hb {}/{} lost  {rtt}{}",
                p.src,
                p.dst,
                p.lost_chunks,
                p.data_chunks,
                p.gap_blocks,
                p.duplicate_tsns,
                p.heartbeats_unanswered,
                p.heartbeats,
                if p.degraded { "  DEGRADED" } else { "" }
            );
            let style = if p.degraded { Style::new().fg(Color::Yellow) } else { Style::new() };
            Line::styled(text, style)
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines)
            .block(section(" path quality (DATA lost, SACKs, window, heartbeat RTT percentiles) ".into())),
        area,
    );
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let (down, npaths) = app.paths_down();
    let mut l1 = vec![];
    if let Some(s) = &app.snapshot {
        l1.push(Span::raw(format!("assocs {}  ", s.assocs.count)));
        l1.push(Span::styled(
            format!("paths down {down}/{npaths}"),
            if down > 0 { Style::new().fg(Color::Red).add_modifier(Modifier::BOLD) } else { Style::new() },
        ));
        l1.push(Span::raw(format!("  records {} lost {}", s.status.records, s.status.records_lost)));
        l1.push(Span::raw(format!("  malformed {}", app.malformed.map_or("?".into(), |m| m.to_string()))));
        l1.push(Span::raw(format!("  events {}", s.status.events)));
    }
    if let (false, Some(e)) = (app.connected, &app.error)
        && app.snapshot.is_some()
    {
        l1 = vec![Span::styled(format!("agent unreachable: {e}"), Style::new().fg(Color::Red))];
    }
    let l2 = if app.mode == Mode::Filter {
        Line::from(vec![
            Span::styled("filter (address, port or state): ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(app.filter.clone()),
            Span::styled("_", Style::new().add_modifier(Modifier::SLOW_BLINK)),
            Span::styled("  Enter keeps, Esc clears", Style::new().fg(Color::DarkGray)),
        ])
    } else {
        Line::styled(
            format!("jk/arrows move  Enter detail  / filter  s sort({})  PgUp/PgDn log  q quit", app.sort.name()),
            Style::new().fg(Color::DarkGray),
        )
    };
    f.render_widget(Paragraph::new(vec![Line::from(l1), l2]), area);
}
