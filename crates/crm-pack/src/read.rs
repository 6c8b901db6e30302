//! Reads a TOML document into the file-side types, by walking the
//! `toml_edit` tree rather than deserializing, so that every structural
//! problem (unknown field, missing field, wrong type) is reported with its
//! position and reading carries on past it.
//!
//! The reader keeps the span of every value it visits (by logical path) so
//! the semantic checks in [`crate::validate`] can point at the right place
//! too. A value it could not read is replaced by its default and its path is
//! marked "poisoned": later checks stay silent about poisoned paths instead
//! of complaining about the placeholder, and still check everything else.

use crate::diagnostic::{Diagnostic, Locator};
use crate::file::{
    AccessFile, ErrorSignalFile, ErrorSignalsFile, FxRateFile, ModelFile, PackFile, PlatformFile,
    PriceFile, ProviderFile,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use toml_edit::{Item, TableLike, Value};

/// What reading produced: the file (placeholders where values were
/// unreadable), the span of each visited path, and the poisoned paths.
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub(crate) file: PackFile,
    pub(crate) spans: Spans,
    poisoned: BTreeSet<String>,
}

impl Read {
    /// Whether `path` or one of its ancestors could not be read.
    pub(crate) fn poisoned(&self, path: &str) -> bool {
        let mut p = path;
        loop {
            if self.poisoned.contains(p) {
                return true;
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => return false,
            }
        }
    }

    /// Whether anything at or below `path` could not be read.
    pub(crate) fn poisoned_under(&self, path: &str) -> bool {
        self.poisoned(path)
            || self
                .poisoned
                .range(path.to_owned()..)
                .take_while(|p| p.starts_with(path))
                .any(|p| matches!(p.as_bytes().get(path.len()), Some(b'.' | b'[')))
    }
}

/// Byte spans by logical path.
#[derive(Debug, Default)]
pub(crate) struct Spans(HashMap<String, Range<usize>>);

impl Spans {
    /// The span of `path`, else of its closest recorded ancestor.
    pub(crate) fn of(&self, path: &str) -> Option<Range<usize>> {
        let mut p = path;
        loop {
            if let Some(s) = self.0.get(p) {
                return Some(s.clone());
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    fn record(&mut self, path: &str, span: Option<Range<usize>>) {
        if let Some(span) = span {
            self.0.entry(path.to_owned()).or_insert(span);
        }
    }
}

const PACK_FIELDS: &[&str] = &[
    "schema_version",
    "pack_id",
    "version",
    "name",
    "description",
    "fx_rates",
    "providers",
];
const FX_FIELDS: &[&str] = &["currency", "usd_per_unit", "source", "as_of"];
const PROVIDER_FIELDS: &[&str] = &[
    "id",
    "display_name",
    "openai_base_url",
    "anthropic_base_url",
    "platform",
    "account_mode",
    "smoke_test_model",
    "quota_limited",
    "model_mapping",
    "access",
    "error_signals",
    "low_balance",
    "low_quota_percent",
    "monitor",
    "models",
];
const LOW_BALANCE_FIELDS: &[&str] = &["amount", "currency"];
const PLATFORM_FIELDS: &[&str] = &["native", "fallback"];
const ACCESS_FIELDS: &[&str] = &[
    "modes",
    "group_rate_multiplier",
    "daily_limit_usd",
    "weekly_limit_usd",
    "monthly_limit_usd",
    "subscription_validity_days",
    "self_service_starting_balance",
];
const SIGNALS_FIELDS: &[&str] = &["invalid_key", "quota"];
const SIGNAL_FIELDS: &[&str] = &["status", "body_contains"];
const MODEL_FIELDS: &[&str] = &["name", "upstream_name", "price"];
const PRICE_FIELDS: &[&str] = &[
    "currency",
    "unit",
    "input",
    "output",
    "cache_read",
    "cache_write",
    "source",
    "as_of",
];

/// Field names the reader accepts, per object path pattern; the schema test
/// checks the JSON Schema agrees with these.
#[cfg(test)]
pub(crate) const KNOWN_FIELDS: &[(&str, &[&str])] = &[
    ("PackFile", PACK_FIELDS),
    ("FxRateFile", FX_FIELDS),
    ("ProviderFile", PROVIDER_FIELDS),
    ("PlatformFile", PLATFORM_FIELDS),
    ("AccessFile", ACCESS_FIELDS),
    ("ErrorSignalsFile", SIGNALS_FIELDS),
    ("ErrorSignalFile", SIGNAL_FIELDS),
    ("ModelFile", MODEL_FIELDS),
    ("PriceFile", PRICE_FIELDS),
];

/// Reads a parsed document. Diagnostics go to `diags`.
pub(crate) fn read(
    doc: &toml_edit::Document<&str>,
    loc: &Locator<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Read {
    let mut w = Walker {
        loc,
        diags,
        out: Read::default(),
    };
    let root = Obj {
        table: doc.as_table(),
        path: String::new(),
        span: None,
    };
    w.out.file = w.pack(&root);
    w.out
}

/// A table (standard or inline) being read, with its path and position.
struct Obj<'t> {
    table: &'t dyn TableLike,
    path: String,
    span: Option<Range<usize>>,
}

impl Obj<'_> {
    fn child(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn describe(&self) -> String {
        if self.path.is_empty() {
            "the top level".to_owned()
        } else {
            format!("`{}`", self.path)
        }
    }
}

struct Walker<'a, 'l> {
    loc: &'a Locator<'l>,
    diags: &'a mut Vec<Diagnostic>,
    out: Read,
}

/// A field's item, path and best span.
struct Field<'t> {
    item: &'t Item,
    path: String,
    span: Option<Range<usize>>,
}

impl<'t> Walker<'_, '_> {
    /// Reports a problem and poisons its path.
    fn report(&mut self, span: Option<Range<usize>>, path: &str, message: String) {
        self.out.poisoned.insert(path.to_owned());
        let d = self.loc.at(span, path, message);
        self.diags.push(d);
    }

    /// Reports every key of `obj` that is not in `known`.
    fn check_fields(&mut self, obj: &Obj<'t>, known: &[&str]) {
        for (key, _) in obj.table.iter() {
            if known.contains(&key) {
                continue;
            }
            let span = obj
                .table
                .key(key)
                .and_then(|k| k.span())
                .or(obj.span.clone());
            let expected = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            self.report(
                span,
                &obj.child(key),
                format!(
                    "unknown field `{key}` in {}; expected one of {expected}",
                    obj.describe()
                ),
            );
        }
    }

    /// Looks up a field; reports it when it is required and missing.
    fn field(&mut self, obj: &Obj<'t>, name: &str, required: bool) -> Option<Field<'t>> {
        let path = obj.child(name);
        match obj.table.get_key_value(name) {
            Some((key, item)) if !item.is_none() => {
                let span = item.span().or_else(|| key.span());
                self.out.spans.record(&path, span.clone());
                Some(Field { item, path, span })
            }
            _ => {
                if required {
                    self.report(
                        obj.span.clone(),
                        &path,
                        format!("missing required field `{name}` in {}", obj.describe()),
                    );
                }
                None
            }
        }
    }

    fn wrong_type(&mut self, f: &Field<'t>, expected: &str) {
        let found = describe_item(f.item);
        let hint =
            if expected == "a string" && matches!(f.item.as_value(), Some(Value::Datetime(_))) {
                " (quote dates: \"2026-10-01\")"
            } else {
                ""
            };
        self.report(
            f.span.clone(),
            &f.path,
            format!("`{}` must be {expected}, found {found}{hint}", f.path),
        );
    }

    fn string(&mut self, obj: &Obj<'t>, name: &str, required: bool) -> Option<String> {
        let f = self.field(obj, name, required)?;
        self.string_of(&f)
    }

    fn string_of(&mut self, f: &Field<'t>) -> Option<String> {
        match f.item.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.wrong_type(f, "a string");
                None
            }
        }
    }

    fn float(&mut self, obj: &Obj<'t>, name: &str, required: bool) -> Option<f64> {
        let f = self.field(obj, name, required)?;
        match f.item.as_value() {
            Some(Value::Float(v)) => Some(*v.value()),
            // An integer is a fine way to write a whole amount.
            #[allow(clippy::cast_precision_loss)]
            Some(Value::Integer(v)) => Some(*v.value() as f64),
            _ => {
                self.wrong_type(&f, "a number");
                None
            }
        }
    }

    fn integer<T: TryFrom<i64>>(
        &mut self,
        obj: &Obj<'t>,
        name: &str,
        required: bool,
        range: (i64, i64),
    ) -> Option<T> {
        let f = self.field(obj, name, required)?;
        let Some(v) = f.item.as_integer() else {
            self.wrong_type(&f, "an integer");
            return None;
        };
        let (lo, hi) = range;
        match T::try_from(v) {
            Ok(t) if (lo..=hi).contains(&v) => Some(t),
            _ => {
                self.report(
                    f.span.clone(),
                    &f.path,
                    format!("`{}` must be between {lo} and {hi}, found {v}", f.path),
                );
                None
            }
        }
    }

    fn boolean(&mut self, obj: &Obj<'t>, name: &str) -> Option<bool> {
        let f = self.field(obj, name, false)?;
        match f.item.as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(&f, "true or false");
                None
            }
        }
    }

    fn string_list(&mut self, obj: &Obj<'t>, name: &str, required: bool) -> Option<Vec<String>> {
        let f = self.field(obj, name, required)?;
        let Some(arr) = f.item.as_array() else {
            self.wrong_type(&f, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, v) in arr.iter().enumerate() {
            let path = format!("{}[{i}]", f.path);
            self.out.spans.record(&path, v.span());
            match v.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => {
                    ok = false;
                    self.report(
                        v.span(),
                        &path,
                        format!("`{path}` must be a string, found {}", describe_value(v)),
                    );
                }
            }
        }
        if !ok {
            // The list as a whole is unknown now; keep checks of it quiet.
            self.out.poisoned.insert(f.path);
            return None;
        }
        Some(out)
    }

    fn string_map(&mut self, obj: &Obj<'t>, name: &str) -> Option<BTreeMap<String, String>> {
        let f = self.field(obj, name, false)?;
        let Some(table) = f.item.as_table_like() else {
            self.wrong_type(&f, "a table of strings");
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, item) in table.iter() {
            let path = format!("{}.\"{key}\"", f.path);
            let key_span = table.key(key).and_then(|k| k.span());
            // Mapping diagnostics are about the key, so remember where it is.
            self.out
                .spans
                .record(&path, key_span.or_else(|| item.span()));
            let field = Field {
                item,
                path: path.clone(),
                span: item.span(),
            };
            match self.string_of(&field) {
                Some(v) => {
                    out.insert(key.to_owned(), v);
                }
                None => ok = false,
            }
        }
        if !ok {
            // The list as a whole is unknown now; keep checks of it quiet.
            self.out.poisoned.insert(f.path);
            return None;
        }
        Some(out)
    }

    fn object(&mut self, obj: &Obj<'t>, name: &str, required: bool) -> Option<Obj<'t>> {
        let f = self.field(obj, name, required)?;
        match f.item.as_table_like() {
            Some(table) => Some(Obj {
                table,
                path: f.path,
                span: f.span,
            }),
            None => {
                self.wrong_type(&f, "a table");
                None
            }
        }
    }

    /// An array of tables, written as `[[name]]` sections or an inline
    /// array. An element that is not a table is reported and kept as `None`
    /// so later elements keep their index.
    fn objects(&mut self, obj: &Obj<'t>, name: &str, required: bool) -> Vec<Option<Obj<'t>>> {
        let Some(f) = self.field(obj, name, required) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match f.item {
            Item::ArrayOfTables(aot) => {
                for (i, t) in aot.iter().enumerate() {
                    let path = format!("{}[{i}]", f.path);
                    let span = t.span().or_else(|| f.span.clone());
                    self.out.spans.record(&path, span.clone());
                    out.push(Some(Obj {
                        table: t,
                        path,
                        span,
                    }));
                }
            }
            Item::Value(Value::Array(arr)) => {
                for (i, v) in arr.iter().enumerate() {
                    let path = format!("{}[{i}]", f.path);
                    self.out.spans.record(&path, v.span());
                    match v.as_inline_table() {
                        Some(t) => out.push(Some(Obj {
                            table: t,
                            path,
                            span: v.span(),
                        })),
                        None => {
                            self.report(
                                v.span(),
                                &path,
                                format!("`{path}` must be a table, found {}", describe_value(v)),
                            );
                            out.push(None);
                        }
                    }
                }
            }
            _ => {
                self.wrong_type(&f, &format!("an array of tables (`[[{name}]]`)"));
            }
        }
        out
    }

    /// Reads each element; unreadable ones become defaults (already poisoned).
    fn each<T: Default>(
        &mut self,
        items: Vec<Option<Obj<'t>>>,
        mut read: impl FnMut(&mut Self, &Obj<'t>) -> T,
    ) -> Vec<T> {
        items
            .iter()
            .map(|o| o.as_ref().map(|o| read(self, o)).unwrap_or_default())
            .collect()
    }

    fn pack(&mut self, o: &Obj<'t>) -> PackFile {
        self.check_fields(o, PACK_FIELDS);
        let schema_version = self.integer(o, "schema_version", true, (0, i64::from(u32::MAX)));
        let pack_id = self.string(o, "pack_id", true);
        let version = self.string(o, "version", true);
        let name = self.string(o, "name", true);
        let description = self.string(o, "description", false);
        let fx = self.objects(o, "fx_rates", false);
        let fx_rates = self.each(fx, Self::fx_rate);
        let providers = self.objects(o, "providers", true);
        let providers = self.each(providers, Self::provider);
        PackFile {
            schema_version: schema_version.unwrap_or_default(),
            pack_id: pack_id.unwrap_or_default(),
            version: version.unwrap_or_default(),
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            fx_rates,
            providers,
        }
    }

    fn fx_rate(&mut self, o: &Obj<'t>) -> FxRateFile {
        self.check_fields(o, FX_FIELDS);
        let currency = self.string(o, "currency", true);
        let usd_per_unit = self.float(o, "usd_per_unit", true);
        let source = self.string(o, "source", true);
        let as_of = self.string(o, "as_of", true);
        FxRateFile {
            currency: currency.unwrap_or_default(),
            usd_per_unit: usd_per_unit.unwrap_or_default(),
            source: source.unwrap_or_default(),
            as_of: as_of.unwrap_or_default(),
        }
    }

    fn provider(&mut self, o: &Obj<'t>) -> ProviderFile {
        self.check_fields(o, PROVIDER_FIELDS);
        let id = self.string(o, "id", true);
        let display_name = self.string(o, "display_name", true);
        let openai_base_url = self.string(o, "openai_base_url", true);
        let anthropic_base_url = self.string(o, "anthropic_base_url", false);
        let platform = self.object(o, "platform", true);
        let platform = platform.map(|p| self.platform(&p));
        let account_mode = self.string(o, "account_mode", true);
        let smoke_test_model = self.string(o, "smoke_test_model", true);
        let quota_limited = self.boolean(o, "quota_limited");
        let model_mapping = self.string_map(o, "model_mapping");
        let access = self.object(o, "access", true);
        let access = access.map(|a| self.access(&a));
        let error_signals = self.object(o, "error_signals", false);
        let error_signals = error_signals.map(|e| self.error_signals(&e));
        let low_balance = self.object(o, "low_balance", false);
        let low_balance = low_balance.map(|b| {
            self.check_fields(&b, LOW_BALANCE_FIELDS);
            crate::file::LowBalanceFile {
                amount: self.float(&b, "amount", true).unwrap_or_default(),
                currency: self.string(&b, "currency", true).unwrap_or_default(),
            }
        });
        let low_quota_percent = self.float(o, "low_quota_percent", false);
        let monitor = self.boolean(o, "monitor");
        let models = self.objects(o, "models", true);
        let models = self.each(models, Self::model);
        ProviderFile {
            id: id.unwrap_or_default(),
            display_name: display_name.unwrap_or_default(),
            openai_base_url: openai_base_url.unwrap_or_default(),
            anthropic_base_url,
            platform: platform.unwrap_or_default(),
            account_mode: account_mode.unwrap_or_default(),
            smoke_test_model: smoke_test_model.unwrap_or_default(),
            quota_limited: quota_limited.unwrap_or(false),
            model_mapping,
            access: access.unwrap_or_default(),
            error_signals: error_signals.unwrap_or_default(),
            low_balance,
            low_quota_percent,
            monitor: monitor.unwrap_or(false),
            models,
        }
    }

    fn platform(&mut self, o: &Obj<'t>) -> PlatformFile {
        self.check_fields(o, PLATFORM_FIELDS);
        let native = self.string(o, "native", true);
        let fallback = self.string(o, "fallback", true);
        PlatformFile {
            native: native.unwrap_or_default(),
            fallback: fallback.unwrap_or_default(),
        }
    }

    fn access(&mut self, o: &Obj<'t>) -> AccessFile {
        self.check_fields(o, ACCESS_FIELDS);
        let modes = self.string_list(o, "modes", true);
        let group_rate_multiplier = self.float(o, "group_rate_multiplier", true);
        let daily_limit_usd = self.float(o, "daily_limit_usd", false);
        let weekly_limit_usd = self.float(o, "weekly_limit_usd", false);
        let monthly_limit_usd = self.float(o, "monthly_limit_usd", false);
        let subscription_validity_days =
            self.integer(o, "subscription_validity_days", true, (1, 36_500));
        let self_service_starting_balance = self.float(o, "self_service_starting_balance", true);
        AccessFile {
            modes: modes.unwrap_or_default(),
            group_rate_multiplier: group_rate_multiplier.unwrap_or_default(),
            daily_limit_usd,
            weekly_limit_usd,
            monthly_limit_usd,
            subscription_validity_days: subscription_validity_days.unwrap_or_default(),
            self_service_starting_balance: self_service_starting_balance.unwrap_or_default(),
        }
    }

    fn error_signals(&mut self, o: &Obj<'t>) -> ErrorSignalsFile {
        self.check_fields(o, SIGNALS_FIELDS);
        let invalid_key = self.objects(o, "invalid_key", false);
        let invalid_key = self.each(invalid_key, Self::signal);
        let quota = self.objects(o, "quota", false);
        let quota = self.each(quota, Self::signal);
        ErrorSignalsFile { invalid_key, quota }
    }

    fn signal(&mut self, o: &Obj<'t>) -> ErrorSignalFile {
        self.check_fields(o, SIGNAL_FIELDS);
        let status = self.integer(o, "status", false, (100, 599));
        let body_contains = self.string(o, "body_contains", false);
        ErrorSignalFile {
            status,
            body_contains,
        }
    }

    fn model(&mut self, o: &Obj<'t>) -> ModelFile {
        self.check_fields(o, MODEL_FIELDS);
        let name = self.string(o, "name", true);
        let upstream_name = self.string(o, "upstream_name", false);
        let price = self.object(o, "price", true);
        let price = price.map(|p| self.price(&p));
        ModelFile {
            name: name.unwrap_or_default(),
            upstream_name,
            price: price.unwrap_or_default(),
        }
    }

    fn price(&mut self, o: &Obj<'t>) -> PriceFile {
        self.check_fields(o, PRICE_FIELDS);
        let currency = self.string(o, "currency", true);
        let unit = self.string(o, "unit", true);
        let input = self.float(o, "input", true);
        let output = self.float(o, "output", true);
        let cache_read = self.float(o, "cache_read", false);
        let cache_write = self.float(o, "cache_write", false);
        let source = self.string(o, "source", true);
        let as_of = self.string(o, "as_of", true);
        PriceFile {
            currency: currency.unwrap_or_default(),
            unit: unit.unwrap_or_default(),
            input: input.unwrap_or_default(),
            output: output.unwrap_or_default(),
            cache_read,
            cache_write,
            source: source.unwrap_or_default(),
            as_of: as_of.unwrap_or_default(),
        }
    }
}

fn describe_item(item: &Item) -> String {
    match item {
        Item::Value(v) => describe_value(v).to_owned(),
        Item::Table(_) => "a table".to_owned(),
        Item::ArrayOfTables(_) => "an array of tables".to_owned(),
        Item::None => "nothing".to_owned(),
    }
}

fn describe_value(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date/time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}
