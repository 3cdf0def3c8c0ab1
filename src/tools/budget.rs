//! The output budget, one mechanism for every tool: a result larger than `--output-budget`
//! characters (its JSON, which is also its text copy) is cut step by step by the view's own
//! [`Shrink::shrink`] until it fits, then marked `truncated: true` with one note that says,
//! the same way for every tool, what was left out and how to get it.

use serde::Serialize;

/// What a cut left out, and how to get it all.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cut {
    /// The part that was cut; a later cut of the same part replaces the earlier one.
    pub part: &'static str,
    /// What is shown now, e.g. "only 3 of the 10 items on this page are shown".
    pub what: String,
    /// The next step to see the rest.
    pub remedy: String,
}

/// A result view that can be made smaller.
pub(crate) trait Shrink: Serialize {
    /// Cuts about `excess` characters (more is fine, less means another round); what was
    /// cut, or `None` when nothing more can go.
    fn shrink(&mut self, excess: usize) -> Option<Cut>;

    /// The view's note, which the cut notes are added to.
    fn note(&mut self) -> &mut Option<String>;

    /// The view's `truncated` flag.
    fn truncated(&mut self) -> &mut Option<bool>;
}

/// Length of `value` as JSON text, counted as it is written (nothing is kept).
pub(crate) fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).map_or(0, |()| count.0)
}

/// `view`, cut until its JSON fits `budget` characters (or nothing more can go).
pub(crate) fn fit<T: Shrink>(mut view: T, budget: usize) -> T {
    let original = view.note().clone();
    let mut cuts: Vec<Cut> = Vec::new();
    loop {
        let size = json_len(&view);
        if size <= budget {
            break;
        }
        let Some(cut) = view.shrink(size - budget) else { break };
        cuts.retain(|c| c.part != cut.part);
        cuts.push(cut);
        *view.truncated() = Some(true);
        let said = describe(&cuts, budget);
        *view.note() = Some(match &original {
            Some(n) => format!("{n}; {said}"),
            None => said,
        });
    }
    view
}

/// The note for `cuts`: what is shown, the budget, and how to see the rest.
fn describe(cuts: &[Cut], budget: usize) -> String {
    let what: Vec<&str> = cuts.iter().map(|c| c.what.as_str()).collect();
    let remedy: Vec<&str> = cuts.iter().map(|c| c.remedy.as_str()).collect();
    format!("{} to stay within the output budget of {budget} characters; {}", what.join(", and "), remedy.join("; "))
}

/// Cuts `text` by about `excess` characters (at least 100 kept); the new length in bytes,
/// or `None` when it is already that short.
pub(crate) fn cut_text(text: &mut String, excess: usize) -> Option<usize> {
    let keep = text.len().saturating_sub(excess.max(64)).max(100);
    if keep + '…'.len_utf8() >= text.len() {
        return None;
    }
    *text = crate::text::truncate(text, keep);
    Some(keep)
}

/// Drops `items` from the end until about `excess` characters are gone (one stays); the cut,
/// when fewer than the `total` the page had are left (`noun`: "items", "members").
pub(crate) fn cut_items<T: Serialize>(
    items: &mut Vec<T>,
    total: usize,
    excess: usize,
    noun: &'static str,
) -> Option<Cut> {
    let mut freed = 0;
    while freed < excess && items.len() > 1 {
        freed += items.pop().map_or(0, |item| json_len(&item) + 1);
    }
    let shown = items.len();
    (shown < total).then(|| Cut {
        part: noun,
        what: format!("only {shown} of the {total} {noun} on this page are shown"),
        remedy: format!("call again with limit={shown} to page through all of them"),
    })
}

/// The usual remedy when only a larger budget shows everything.
pub(crate) const LARGER_BUDGET: &str = "restart the server with a larger --output-budget to see all of it";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Doc {
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        truncated: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    }

    impl Shrink for Doc {
        fn shrink(&mut self, excess: usize) -> Option<Cut> {
            let kept = cut_text(&mut self.text, excess)?;
            Some(Cut { part: "text", what: format!("the text was cut to {kept} bytes"), remedy: LARGER_BUDGET.into() })
        }
        fn note(&mut self) -> &mut Option<String> {
            &mut self.note
        }
        fn truncated(&mut self) -> &mut Option<bool> {
            &mut self.truncated
        }
    }

    #[test]
    fn a_large_view_is_cut_to_the_budget_and_says_so_once() {
        let doc = Doc { text: "é".repeat(5_000), truncated: None, note: Some("earlier".into()) };
        let fitted = fit(doc, 2_000);
        assert!(json_len(&fitted) <= 2_000, "{}", json_len(&fitted));
        assert_eq!(fitted.truncated, Some(true));
        let note = fitted.note.unwrap();
        assert!(note.starts_with("earlier; the text was cut to"), "{note}");
        assert_eq!(note.matches("output budget of 2000 characters").count(), 1, "{note}");
    }

    #[test]
    fn a_small_view_is_untouched() {
        let fitted = fit(Doc { text: "short".into(), truncated: None, note: None }, 2_000);
        assert_eq!((fitted.text.as_str(), fitted.truncated, fitted.note), ("short", None, None));
    }

    #[test]
    fn a_view_that_cannot_shrink_is_returned_as_it_is() {
        let fitted = fit(Doc { text: "x".repeat(100), truncated: None, note: None }, 10);
        assert_eq!((fitted.text.len(), fitted.truncated), (100, None));
    }
}
