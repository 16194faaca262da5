//! Keys: arrows/jk move, Enter toggles the detail, `/` filters, `s` sorts,
//! PgUp/PgDn/End scroll the event log, Esc goes back or clears the filter,
//! `q` (or Ctrl-C) quits.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::state::{App, Mode};

pub fn handle_key(app: &mut App, k: KeyEvent) {
    if k.kind == KeyEventKind::Release {
        return;
    }
    if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
        app.quit = true;
        return;
    }
    if app.mode == Mode::Filter {
        match k.code {
            KeyCode::Enter => app.mode = Mode::Normal,
            KeyCode::Esc => {
                app.filter.clear();
                app.mode = Mode::Normal;
            }
            KeyCode::Backspace => {
                app.filter.pop();
            }
            KeyCode::Char(c) => app.filter.push(c),
            _ => {}
        }
        app.fix_selection();
        return;
    }
    match k.code {
        KeyCode::Char('q') => app.quit = true,
        KeyCode::Up | KeyCode::Char('k') => app.move_selection(-1),
        KeyCode::Down | KeyCode::Char('j') => app.move_selection(1),
        KeyCode::Home | KeyCode::Char('g') => app.move_selection(isize::MIN / 2),
        KeyCode::Char('G') => app.move_selection(isize::MAX / 2),
        KeyCode::Enter => app.mode = if app.mode == Mode::Detail { Mode::Normal } else { Mode::Detail },
        KeyCode::Esc => {
            if app.mode == Mode::Detail {
                app.mode = Mode::Normal;
            } else {
                app.filter.clear();
                app.fix_selection();
            }
        }
        KeyCode::Char('/') => {
            app.mode = Mode::Filter;
        }
        KeyCode::Char('s') => {
            app.sort = app.sort.next();
        }
        KeyCode::PageUp => app.log_scroll = (app.log_scroll + 5).min(app.log.len().saturating_sub(1)),
        KeyCode::PageDown => app.log_scroll = app.log_scroll.saturating_sub(5),
        KeyCode::End => app.log_scroll = 0,
        _ => {}
    }
}
