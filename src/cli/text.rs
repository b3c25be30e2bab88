//! Laying out the notes under `--help` (clap's `after_help`) for a terminal of any width, and the
//! same text as roff for the man page ([`super::docs`]).
//!
//! clap wraps help text to the terminal, but a wrapped line continues at the indentation of its
//! first word, so a hand-aligned table falls apart in a narrow terminal. The notes are therefore
//! written in a small markup, laid out here:
//!
//! - Blocks are separated by blank lines.
//! - A line that starts with a non-space is prose: consecutive prose lines form one paragraph,
//!   which flows (the source may break it anywhere).
//! - An indented line with a tab is a row of a definition list, `  TERM\tDESCRIPTION`: the
//!   description flows beside the term (short terms) or below it (long ones), with a hanging
//!   indent.
//! - Any other indented line is verbatim (examples, commands): never wrapped, so it must fit in
//!   80 columns (`tests/help_width.rs` checks).

use std::io::IsTerminal;

/// Widest layout: longer lines are hard to read, even in a wide terminal.
pub const MAX_WIDTH: usize = 100;
/// Narrowest layout; below this, lines simply overflow.
const MIN_WIDTH: usize = 40;
/// Where a definition's description starts when its term is too long to sit beside it.
const STACKED_INDENT: usize = 8;
/// Terms at most this wide sit beside their descriptions.
const MAX_TERM_COLUMN: usize = 16;

/// The width to lay help out for: the terminal's (standard output's, else `$COLUMNS`, as clap
/// reads it), at most [`MAX_WIDTH`]; [`MAX_WIDTH`] when there is neither.
pub fn help_width() -> usize {
    let terminal = std::io::stdout()
        .is_terminal()
        .then(terminal_size::terminal_size)
        .flatten()
        .map(|(width, _)| usize::from(width.0));
    let columns = || {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
    };
    terminal
        .or_else(columns)
        .unwrap_or(MAX_WIDTH)
        .clamp(MIN_WIDTH, MAX_WIDTH)
}

/// One block of the markup.
#[derive(Debug, PartialEq, Eq)]
pub enum Block<'a> {
    /// A paragraph, its lines joined by single spaces.
    Prose(String),
    /// Definition rows: (term, description).
    Definitions(Vec<(&'a str, &'a str)>),
    /// Lines printed as they are (their indentation included).
    Verbatim(Vec<&'a str>),
}

/// Splits `text` into blocks (see the module documentation), each with whether a blank line
/// came before it (a heading such as "Examples:" stays on the line above its block).
pub fn blocks(text: &str) -> Vec<(Block<'_>, bool)> {
    let mut blocks: Vec<(Block, bool)> = Vec::new();
    let mut last_blank = true;
    for line in text.trim_matches('\n').lines() {
        let line = line.trim_end();
        if line.is_empty() {
            last_blank = true;
            continue;
        }
        let indented = line.starts_with(' ');
        let row = line
            .split_once('\t')
            .filter(|_| indented)
            .map(|(term, text)| (term.trim(), text.trim()));
        let joined = match (blocks.last_mut().map(|(block, _)| block), last_blank) {
            (Some(Block::Prose(paragraph)), false) if !indented => {
                paragraph.push(' ');
                paragraph.push_str(line.trim());
                true
            }
            (Some(Block::Definitions(rows)), false) if row.is_some() => {
                rows.extend(row);
                true
            }
            (Some(Block::Verbatim(lines)), false) if indented && row.is_none() => {
                lines.push(line);
                true
            }
            _ => false,
        };
        if !joined {
            let block = match row {
                Some(row) => Block::Definitions(vec![row]),
                None if indented => Block::Verbatim(vec![line]),
                None => Block::Prose(line.trim().to_owned()),
            };
            blocks.push((block, last_blank));
        }
        last_blank = false;
    }
    blocks
}

/// `text` (in the markup) laid out for a terminal `width` columns wide.
pub fn flow(text: &str, width: usize) -> String {
    let mut out = Vec::new();
    for (block, after_blank) in blocks(text) {
        if after_blank && !out.is_empty() {
            out.push(String::new());
        }
        match block {
            Block::Prose(paragraph) => out.extend(wrap(&paragraph, width, "", "")),
            Block::Verbatim(lines) => out.extend(lines.iter().map(|l| (*l).to_owned())),
            Block::Definitions(rows) => {
                let widest = rows.iter().map(|(term, _)| term.len()).max().unwrap_or(0);
                let beside = widest <= MAX_TERM_COLUMN;
                for (term, text) in rows {
                    if beside {
                        let first = format!("  {term:widest$}  ");
                        let hang = " ".repeat(first.len());
                        out.extend(wrap(text, width, &first, &hang));
                    } else {
                        out.extend(wrap(term, width, "  ", "  "));
                        let hang = " ".repeat(STACKED_INDENT);
                        out.extend(wrap(text, width, &hang, &hang));
                    }
                }
            }
        }
    }
    out.join("\n")
}

/// `text`'s words in lines of at most `width` columns (a longer word gets a line of its own,
/// whole), the first line starting with `first`, the others with `hang`.
fn wrap(text: &str, width: usize, first: &str, hang: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        let len = |s: &str| s.chars().count();
        if !empty && len(&line) + 1 + len(word) > width {
            lines.push(std::mem::replace(&mut line, hang.to_owned()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Exit status, as\nscripts see it:\n  0\tsuccess\n  10\tthe mount point \
                          is busy: a process has a file open in it\n\nExamples:\n  veilfs mount a b\n";

    #[test]
    fn markup_parses_into_blocks() {
        assert_eq!(
            blocks(SAMPLE),
            [
                (Block::Prose("Exit status, as scripts see it:".into()), true),
                (
                    Block::Definitions(vec![
                        ("0", "success"),
                        (
                            "10",
                            "the mount point is busy: a process has a file open in it"
                        )
                    ]),
                    false
                ),
                (Block::Prose("Examples:".into()), true),
                (Block::Verbatim(vec!["  veilfs mount a b"]), false),
            ]
        );
    }

    #[test]
    fn definitions_hang_beside_short_terms() {
        assert_eq!(
            flow(SAMPLE, 40),
            "Exit status, as scripts see it:\n  0   success\n  10  the mount point is busy: a \
             process\n      has a file open in it\n\nExamples:\n  veilfs mount a b"
        );
    }

    #[test]
    fn long_terms_go_on_a_line_of_their_own() {
        let text = "  default_permissions, dev, nodev\tpassed to the kernel as they are";
        assert_eq!(
            flow(text, 30),
            "  default_permissions, dev,\n  nodev\n        passed to the kernel\n        \
             as they are"
        );
    }

    #[test]
    fn no_line_is_longer_than_the_width_unless_one_word_is() {
        let text = "word ".repeat(50) + "\n  term\t" + &"more words ".repeat(30);
        for width in [40, 61, 80, 100] {
            assert!(flow(&text, width).lines().all(|l| l.len() <= width));
        }
        assert_eq!(
            wrap("a-very-long-word b", 5, "", ""),
            ["a-very-long-word", "b"]
        );
    }
}
