//! The roff building blocks of both man pages: paragraphs, tagged items, examples, and notes
//! in [`crate::cli::text`]'s markup.

use clap_mangen::roff::{roman, Inline, Roff};

use crate::cli::text::{self, Block};

/// Notes in [`text`]'s markup: prose paragraphs flow, definition lists become tagged
/// paragraphs, verbatim lines stay as they are.
pub(super) fn notes(roff: &mut Roff, text: &str) {
    for (block, _) in text::blocks(text) {
        match block {
            Block::Prose(text) => paragraph(roff, [roman(text)]),
            Block::Definitions(rows) => {
                for (term, description) in rows {
                    item(roff, vec![roman(term)], description);
                }
            }
            Block::Verbatim(lines) => example(roff, &lines.join("\n")),
        }
    }
}

pub(super) fn preformatted(roff: &mut Roff, text: &str) {
    roff.control("nf", []);
    roff.text([roman(text.trim_end())]);
    roff.control("fi", []);
}

pub(super) fn paragraph(roff: &mut Roff, inlines: impl Into<Vec<Inline>>) {
    roff.control("PP", []);
    roff.text(inlines);
}

pub(super) fn item(roff: &mut Roff, term: Vec<Inline>, text: &str) {
    roff.control("TP", []);
    roff.text(term);
    roff.text([roman(text)]);
}

pub(super) fn example(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    preformatted(roff, text);
}
