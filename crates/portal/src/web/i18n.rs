//! The pages' messages: one Fluent catalogue per language
//! (`locales/<lang>/<area>.ftl`, compiled in). Fluent carries the plural
//! rules (Romanian: one, few, other) and the arguments; a test checks that
//! both languages have exactly the same message ids and that every file
//! parses.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

use crate::pages::Lang;

/// Every catalogue: `(area, English, Romanian)`. Add one line per area.
const FILES: &[(&str, &str, &str)] = &[
    ("web", include_str!("../../locales/en/web.ftl"), include_str!("../../locales/ro/web.ftl")),
    ("desk-login", include_str!("../../locales/en/desk-login.ftl"), include_str!("../../locales/ro/desk-login.ftl")),
    (
        "holder-orders",
        include_str!("../../locales/en/holder-orders.ftl"),
        include_str!("../../locales/ro/holder-orders.ftl"),
    ),
    (
        "holder-certs",
        include_str!("../../locales/en/holder-certs.ftl"),
        include_str!("../../locales/ro/holder-certs.ftl"),
    ),
    ("desk-pages", include_str!("../../locales/en/desk-pages.ftl"), include_str!("../../locales/ro/desk-pages.ftl")),
];

struct Catalogues {
    en: FluentBundle<FluentResource>,
    ro: FluentBundle<FluentResource>,
}

static CATALOGUES: LazyLock<Catalogues> = LazyLock::new(|| Catalogues {
    en: bundle(Lang::En, FILES.iter().map(|f| f.1)),
    ro: bundle(Lang::Ro, FILES.iter().map(|f| f.2)),
});

fn bundle<'a>(lang: Lang, sources: impl Iterator<Item = &'a str>) -> FluentBundle<FluentResource> {
    let id: unic_langid::LanguageIdentifier = lang.code().parse().unwrap_or_default();
    let mut b = FluentBundle::new_concurrent(vec![id]);
    // Plain text into HTML: no Unicode isolation marks around arguments.
    b.set_use_isolating(false);
    for src in sources {
        // A file with syntax errors keeps the messages that parsed; the
        // test below fails on any error, so none ship.
        let res = FluentResource::try_new(src.to_owned()).unwrap_or_else(|(partial, _)| partial);
        // Duplicate ids across files: the later one wins (the test refuses them).
        b.add_resource_overriding(res);
    }
    b
}

/// A fluent argument value (a number or a string).
pub(crate) type Arg<'a> = FluentValue<'a>;

/// The messages of one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tr {
    lang: Lang,
}

impl Tr {
    pub(crate) fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    /// Message `id` without arguments.
    pub(crate) fn t(self, id: &str) -> String {
        self.args(id, &[])
    }

    /// Message `id` with named arguments. A message missing in this
    /// language falls back to English, then to the id itself.
    pub(crate) fn args(self, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        let c = &*CATALOGUES;
        let primary = match self.lang {
            Lang::En => &c.en,
            Lang::Ro => &c.ro,
        };
        let mut fargs = FluentArgs::new();
        for (k, v) in args {
            fargs.set(*k, v.clone());
        }
        for b in [primary, &c.en] {
            if let Some(pattern) = b.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                let text = b.format_pattern(pattern, Some(&fargs), &mut errors);
                if !errors.is_empty() {
                    tracing::warn!(message = id, lang = self.lang.code(), "a page message was formatted with errors");
                }
                return text.into_owned();
            }
        }
        tracing::warn!(message = id, lang = self.lang.code(), "a page message is missing");
        id.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use std::collections::BTreeSet;

    use fluent_syntax::ast::Entry;

    use super::*;

    fn ids(area: &str, lang: &str, src: &str) -> BTreeSet<String> {
        let res = match fluent_syntax::parser::parse(src) {
            Ok(r) => r,
            Err((_, errors)) => panic!("locales/{lang}/{area}.ftl does not parse: {errors:?}"),
        };
        let mut ids = BTreeSet::new();
        for e in res.body {
            match e {
                Entry::Message(m) => assert!(ids.insert(m.id.name.to_owned()), "{lang}/{area}: {} twice", m.id.name),
                Entry::Term(t) => assert!(ids.insert(format!("-{}", t.id.name)), "{lang}/{area}: -{} twice", t.id.name),
                Entry::Junk { content } => panic!("locales/{lang}/{area}.ftl has junk: {content}"),
                _ => {}
            }
        }
        ids
    }

    #[test]
    fn both_languages_have_every_message_and_no_id_is_reused() {
        let mut all = BTreeSet::new();
        for (area, en, ro) in FILES {
            let (en_ids, ro_ids) = (ids(area, "en", en), ids(area, "ro", ro));
            let only_en: Vec<_> = en_ids.difference(&ro_ids).collect();
            let only_ro: Vec<_> = ro_ids.difference(&en_ids).collect();
            assert!(only_en.is_empty() && only_ro.is_empty(), "{area}: only in en {only_en:?}, only in ro {only_ro:?}");
            for id in en_ids {
                assert!(all.insert(id.clone()), "{id} is defined in two areas");
            }
        }
    }

    #[test]
    fn romanian_has_three_plural_forms_and_english_two() {
        let n = |lang, v: i64| Tr::new(lang).args("web-minutes", &[("n", Arg::from(v))]);
        assert_eq!(n(Lang::En, 1), "1 minute");
        assert_eq!(n(Lang::En, 5), "5 minutes");
        assert_eq!(n(Lang::Ro, 1), "1 minut");
        assert_eq!(n(Lang::Ro, 5), "5 minute");
        assert_eq!(n(Lang::Ro, 20), "20 de minute");
        assert_eq!(n(Lang::Ro, 19), "19 minute");
        assert_eq!(n(Lang::Ro, 100), "100 de minute");
        // CLDR says "few" for 101..119 too ("101 minute"); intl_pluralrules
        // (fluent's rules) still says "other" there, so that case is not asserted.
        assert_eq!(Tr::new(Lang::Ro).t("no-such-message"), "no-such-message");
    }
}
