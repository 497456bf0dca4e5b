//! The segment language (SPEC §2): types and a parser from JSON that
//! reports every error with the segment's code and the JSON path inside it
//! (`rule.all[2].attr`). Unknown keys are errors, never ignored.

use serde::Serialize;
use serde_json::{Map, Value as Json};

/// A problem with a segment definition, named by code and JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("segment `{code}`: {path}: {message}")]
pub struct SegmentError {
    /// The segment's code (or `#N` for the N-th definition without one).
    pub code: String,
    /// Where in the definition (`rule.all[2].attr`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// `dynamic` (recomputed at every recalculation) or `static` (frozen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Recomputed at every recalculation.
    Dynamic,
    /// Formed once, then frozen.
    Static,
}

/// A segment definition.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    /// Stable identifier, `[a-z0-9_]+`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Dynamic or static.
    pub mode: Mode,
    /// Inactive segments are not recalculated.
    pub active: bool,
    /// The membership rule.
    pub rule: Condition,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    /// >
    Gt,
    /// >=
    Gte,
    /// <
    Lt,
    /// <=
    Lte,
    /// ==
    Eq,
}

impl CmpOp {
    /// Whether a value that compares to the threshold as `ord` passes.
    #[inline(always)]
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        match self {
            CmpOp::Gt => ord.is_gt(),
            CmpOp::Gte => ord.is_ge(),
            CmpOp::Lt => ord.is_lt(),
            CmpOp::Lte => ord.is_le(),
            CmpOp::Eq => ord.is_eq(),
        }
    }

    /// The integers `v` with `v op x`, for an `x` whose floor and ceiling
    /// are given: `(lo, hi)`, `None` for an open end, empty when lo > hi.
    pub fn int_range(self, floor: i128, ceil: i128) -> (Option<i128>, Option<i128>) {
        match self {
            CmpOp::Gt => (Some(floor.saturating_add(1)), None),
            CmpOp::Gte => (Some(ceil), None),
            CmpOp::Lt => (None, Some(ceil.saturating_sub(1))),
            CmpOp::Lte => (None, Some(floor)),
            CmpOp::Eq => (Some(ceil), Some(floor)),
        }
    }
}

/// A condition (SPEC §2.1), with its JSON path for error messages.
///
/// [`Condition::canonical`] gives a key that is the same for conditions that
/// mean the same (paths left out, list order and nesting of `all`/`any`
/// normalised, double negation removed): the unit of sharing across
/// segments.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Every child holds (`[]` = every customer).
    All(Vec<Condition>),
    /// At least one child holds (`[]` = no customer).
    Any(Vec<Condition>),
    /// The child does not hold.
    Not(Box<Condition>),
    /// The customer's external id is listed.
    Customers {
        /// The ids as JSON (numbers or strings).
        ids: Vec<Json>,
        /// JSON path.
        path: String,
    },
    /// Member of another segment as of the same evaluation.
    Segment {
        /// The other segment's code.
        code: String,
        /// JSON path.
        path: String,
    },
    /// A test on a customer attribute.
    Attr {
        /// Attribute name.
        name: String,
        /// The test.
        test: AttrTest,
        /// JSON path of the condition object.
        path: String,
    },
    /// A purchase condition.
    Purchased(Purchase),
}

/// Sorted, deduplicated, comma-joined: the canonical text of a set.
fn sorted_set(items: impl Iterator<Item = String>) -> String {
    let mut v: Vec<String> = items.collect();
    v.sort();
    v.dedup();
    v.join(",")
}

/// The canonical text of a list of JSON values taken as a set.
fn value_set(v: &[Json]) -> String {
    sorted_set(v.iter().map(|x| x.to_string()))
}

impl Purchase {
    /// The canonical text of the `where` and the window, without `having`:
    /// equal for purchase conditions that keep the same lines, whose
    /// measures can therefore be read once for several `having` tests.
    pub fn lines_key(&self) -> String {
        format!(
            "purchased:{{{}}}:{:?}",
            self.filters_key(|_| true),
            self.window
        )
    }

    /// The canonical text of the order-attribute keys of the `where` and
    /// the window: equal for purchase conditions that keep the same orders
    /// (whatever products they keep).
    pub fn orders_key(&self) -> String {
        format!(
            "orders:{{{}}}:{:?}",
            self.filters_key(|f| is_order_key(&f.key)),
            self.window
        )
    }

    /// [`Self::lines_key`] without the `where` key `key`: equal for
    /// purchase conditions that differ only in the values of `key`.
    pub fn lines_key_except(&self, key: &str) -> String {
        format!(
            "purchased:{{{}}}:{:?}",
            self.filters_key(|f| f.key != key),
            self.window
        )
    }

    /// Whether the `where` has a product key.
    pub fn filters_products(&self) -> bool {
        self.filters.iter().any(|f| !is_order_key(&f.key))
    }

    /// The canonical text of the `where` keys that `pick` selects.
    fn filters_key(&self, pick: impl Fn(&LineFilter) -> bool) -> String {
        sorted_set(self.filters.iter().filter(|f| pick(f)).map(|f| {
            format!(
                "{}{}[{}]",
                f.key,
                if f.negate { "!" } else { "" },
                value_set(&f.values)
            )
        }))
    }
}

impl Condition {
    /// A canonical text of the condition: equal for conditions that are the
    /// same up to JSON paths, order of alternatives and `all`/`any` nesting.
    pub fn canonical(&self) -> String {
        fn flat<'c>(c: &'c Condition, all: bool, out: &mut Vec<&'c Condition>) {
            match (c, all) {
                (Condition::All(v), true) | (Condition::Any(v), false) => {
                    v.iter().for_each(|c| flat(c, all, out))
                }
                _ => out.push(c),
            }
        }
        let values = value_set;
        match self {
            Condition::All(_) | Condition::Any(_) => {
                let all = matches!(self, Condition::All(_));
                let mut parts = Vec::new();
                flat(self, all, &mut parts);
                if parts.len() == 1 && !std::ptr::eq(parts[0], self) {
                    return parts[0].canonical();
                }
                let inner = sorted_set(parts.iter().map(|c| c.canonical()));
                format!("{}({inner})", if all { "all" } else { "any" })
            }
            Condition::Not(c) => match c.as_ref() {
                Condition::Not(inner) => inner.canonical(),
                c => format!("not({})", c.canonical()),
            },
            Condition::Customers { ids, .. } => format!("customers[{}]", values(ids)),
            Condition::Segment { code, .. } => format!("segment:{code}"),
            Condition::Attr { name, test, .. } => {
                let t = match test {
                    AttrTest::In(v) => format!("in[{}]", values(v)),
                    AttrTest::NotIn(v) => format!("not_in[{}]", values(v)),
                    AttrTest::AllOf(v) => format!("all_of[{}]", values(v)),
                    other => serde_json::to_string(other).expect("serializable"),
                };
                format!("attr:{name}:{t}")
            }
            Condition::Purchased(p) => {
                let having = sorted_set(p.having.iter().map(|h| format!("{h:?}")));
                format!("{}:{{{having}}}", p.lines_key())
            }
        }
    }
}

/// What an `attr` condition tests.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrTest {
    /// The value (or one of a multi-valued attribute's values) is listed.
    In(Vec<Json>),
    /// Exactly `not` of `In`.
    NotIn(Vec<Json>),
    /// A multi-valued attribute holds every value.
    AllOf(Vec<Json>),
    /// Is (true) / is not (false) null.
    IsNull(bool),
    /// All comparisons hold (`between` becomes `gte` + `lte`).
    Compare(Vec<(CmpOp, Json)>),
    /// The date falls on a day of the window.
    Window(Window),
    /// The date's month-day falls on a month-day of the window.
    Anniversary(Anniversary),
}

/// A window of days (SPEC §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Every day up to D.
    AllTime,
    /// D.
    Today,
    /// D−1.
    Yesterday,
    /// Monday of D's week … D.
    ThisWeek,
    /// The whole week before D's week.
    LastWeek,
    /// Monday … Sunday of D's week.
    CurrentWeek,
    /// The 1st of D's month … D.
    MonthToDate,
    /// The whole month before D's month.
    PreviousMonth,
    /// The whole month of D.
    CurrentMonth,
    /// 1 January … D.
    YearToDate,
    /// The whole year before D's year.
    LastYear,
    /// D−(N−1) … D.
    LastDays(u32),
    /// D … D+(N−1).
    NextDays(u32),
    /// D+a … D+b.
    RelativeDays(i32, i32),
    /// (D − N months, clamped) + 1 day … D.
    LastMonths(u32),
    /// d1 … d2 (day numbers).
    Between(i32, i32),
    /// d … D.
    Since(i32),
    /// Every day before d.
    Before(i32),
}

/// The window of an `anniversary` test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anniversary {
    /// Month-days of a window of real days.
    Days(Window),
    /// A literal range of month-days, (month, day) … (month, day), which may
    /// wrap the year.
    MonthDays((u32, u32), (u32, u32)),
}

/// A purchase measure (SPEC §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Distinct orders.
    Orders,
    /// Lines.
    Lines,
    /// Sum of quantity.
    Units,
    /// Sum of line_total (money).
    Spend,
    /// spend ÷ orders (money; never true when orders is 0).
    AvgOrderValue,
}

/// An exact decimal number `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Decimal {
    /// Unscaled value.
    pub mantissa: i128,
    /// Decimal places.
    pub scale: u32,
}

impl Decimal {
    /// The most decimal places a number of the language may have.
    pub const MAX_SCALE: u32 = 30;

    /// Parses the decimal text of a JSON number (`12`, `-0.125`, `1e3`);
    /// `None` past [`Self::MAX_SCALE`] places or an `i128` mantissa.
    pub fn from_json(n: &serde_json::Number) -> Option<Self> {
        let (neg, digits, exp) = decimal_parts(&n.to_string())?;
        let mut mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let mut scale = -exp;
        while scale < 0 {
            mantissa = mantissa.checked_mul(10)?;
            scale += 1;
        }
        if scale > i64::from(Self::MAX_SCALE) {
            return None;
        }
        Some(Self {
            mantissa: if neg { -mantissa } else { mantissa },
            scale: scale as u32,
        })
    }

    /// Parses a `having` threshold. Every measure is a sum kept in 64 bits,
    /// far below [`MEASURE_BOUND`], so a threshold at or beyond ±that bound
    /// compares with every measure as ±the bound does and is read as it
    /// (`{"spend": {"lt": 1e40}}` holds for everyone). Otherwise exact, or
    /// an error saying what does not fit.
    pub fn threshold_from_json(n: &serde_json::Number) -> Result<Self, String> {
        let text = n.to_string();
        let Some((neg, digits, exp)) = decimal_parts(&text) else {
            return Err(format!(
                "{text} is not a decimal number this engine can read"
            ));
        };
        // digits × 10^exp ≥ 10^(len + exp − 1): at least the bound when
        // len + exp − 1 ≥ 20.
        if !digits.is_empty() && digits.len() as i64 + exp > MEASURE_BOUND_DIGITS {
            let bound = 10i128.pow(MEASURE_BOUND_DIGITS as u32);
            return Ok(Self {
                mantissa: if neg { -bound } else { bound },
                scale: 0,
            });
        }
        if -exp > i64::from(Self::MAX_SCALE) {
            return Err(format!(
                "{text} has more than {} decimal places",
                Self::MAX_SCALE
            ));
        }
        Self::from_json(n).ok_or_else(|| format!("{text} has too many significant digits"))
    }

    /// `floor` and `ceil` of `self × 10^shift` for `shift <= 8`, exactly,
    /// saturating at the ends of `i128` (far past any measure).
    pub fn floor_ceil_scaled(&self, shift: u32) -> (i128, i128) {
        debug_assert!(shift <= 8);
        // self × 10^shift = q × 10^shift + r × 10^shift / 10^scale, with
        // 0 <= r < 10^scale <= 10^30: r × 10^shift fits.
        let (up, pow) = (POW10[shift as usize], POW10[self.scale as usize]);
        let (q, r) = (self.mantissa.div_euclid(pow), self.mantissa.rem_euclid(pow));
        let floor = q.saturating_mul(up).saturating_add(r * up / pow);
        let ceil = if (r * up) % pow == 0 {
            floor
        } else {
            floor.saturating_add(1)
        };
        (floor, ceil)
    }
}

/// Every measure of a `having` (a count or a sum of cents kept in 64
/// bits) is below 10^this in magnitude, and so is spend or
/// avg_order_value in currency units.
const MEASURE_BOUND_DIGITS: i64 = 20;

/// 10^`MEASURE_BOUND_DIGITS`: the magnitude past which `having`
/// thresholds are read as this bound (see [`Decimal::threshold_from_json`]).
pub const MEASURE_BOUND: i128 = 10i128.pow(MEASURE_BOUND_DIGITS as u32);

/// The sign, significant digits (no leading or trailing zeros; empty for
/// zero) and power of ten of a JSON number's text: the value is
/// `±digits × 10^exp`. `None` for text that is not a decimal number or an
/// exponent beyond `i32`.
fn decimal_parts(text: &str) -> Option<(bool, String, i64)> {
    let (num, exp) = match text.split_once(['e', 'E']) {
        Some((a, e)) => (a, i64::from(e.parse::<i32>().ok()?)),
        None => (text, 0),
    };
    let (neg, body) = match num.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, num),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let all = format!("{int}{frac}");
    let mut exp = exp - frac.len() as i64;
    let trimmed = all.trim_start_matches('0');
    let digits = trimmed.trim_end_matches('0');
    exp += (trimmed.len() - digits.len()) as i64;
    if digits.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((neg, digits.to_string(), exp))
}

/// Powers of ten up to 10^[`Decimal::MAX_SCALE`].
pub(crate) const POW10: [i128; Decimal::MAX_SCALE as usize + 1] = {
    let mut p = [1i128; Decimal::MAX_SCALE as usize + 1];
    let mut i = 1;
    while i < p.len() {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// Past every 64-bit key an attribute stores, scaled or not: what
/// [`scaled_floor_ceil`] gives a number whose scaled magnitude reaches it.
pub const BEYOND_KEYS: i128 = 10i128.pow(30);

/// `floor` and `ceil` of a JSON number × 10^shift, exactly at any size
/// and any number of decimal places, except that a magnitude of
/// [`BEYOND_KEYS`] or more is given as ±that (it compares with every
/// stored key as the number does). `None` for text that is not a decimal
/// number.
pub fn scaled_floor_ceil(n: &serde_json::Number, shift: u32) -> Option<(i128, i128)> {
    let (neg, digits, exp) = decimal_parts(&n.to_string())?;
    if digits.is_empty() {
        return Some((0, 0));
    }
    // The value × 10^shift is ±digits × 10^e, at least 10^(len + e − 1).
    let e = exp + i64::from(shift);
    let len = digits.len() as i64;
    if len + e > 30 {
        let b = if neg { -BEYOND_KEYS } else { BEYOND_KEYS };
        return Some((b, b));
    }
    let sign = if neg { -1 } else { 1 };
    if e >= 0 {
        // At most 30 digits: fits.
        let v = sign * digits.parse::<i128>().ok()? * 10i128.pow(e as u32);
        return Some((v, v));
    }
    // A fraction remains (the digits have no trailing zeros).
    let whole_len = (len + e).max(0) as usize;
    let whole: i128 = if whole_len == 0 {
        0
    } else {
        digits[..whole_len].parse().ok()?
    };
    Some(if neg {
        (-whole - 1, -whole)
    } else {
        (whole, whole + 1)
    })
}

/// Where a JSON number falls among doubles that each stand for their
/// shortest round-trip decimal text (how a float attribute's values
/// compare): the double nearest to the number, and how that double's
/// text compares with the number's exact value (`Equal` when they are the
/// same number). Every other double is then on one side of the number as
/// its order among doubles says. `None` for text that is not a decimal
/// number.
pub fn float_threshold(n: &serde_json::Number) -> Option<(f64, std::cmp::Ordering)> {
    let text = n.to_string();
    let exact = decimal_parts(&text)?;
    let nearest: f64 = text.parse().ok()?;
    let nearest = if nearest == 0.0 { 0.0 } else { nearest }; // no -0.0
    let order = if nearest.is_infinite() {
        if nearest > 0.0 {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Less
        }
    } else {
        cmp_parts(&decimal_parts(&format!("{nearest}"))?, &exact)
    };
    Some((nearest, order))
}

/// Compares two numbers' [`decimal_parts`] exactly, whatever their size.
fn cmp_parts(x: &(bool, String, i64), y: &(bool, String, i64)) -> std::cmp::Ordering {
    let sign = |(neg, digits, _): &(bool, String, i64)| match (digits.is_empty(), neg) {
        (true, _) => 0,
        (false, true) => -1,
        (false, false) => 1,
    };
    let (sx, sy) = (sign(x), sign(y));
    if sx != sy || sx == 0 {
        return sx.cmp(&sy);
    }
    // Same sign, both nonzero: the magnitude's leading power of ten, then
    // the digits from the most significant (digit strings compare so, a
    // prefix before the longer).
    let magnitude =
        (x.1.len() as i64 + x.2, x.1.as_str()).cmp(&(y.1.len() as i64 + y.2, y.1.as_str()));
    if sx < 0 {
        magnitude.reverse()
    } else {
        magnitude
    }
}

/// A `purchased` condition.
#[derive(Debug, Clone, Serialize)]
pub struct Purchase {
    /// Line filters: key → alternatives (or `not_in`), all on the same line.
    pub filters: Vec<LineFilter>,
    /// Days whose lines count (default all time).
    pub window: Window,
    /// Measure tests (empty = at least one kept line).
    pub having: Vec<(Measure, CmpOp, Decimal)>,
    /// JSON path of the `purchased` object.
    pub path: String,
}

/// One key of a `where`.
#[derive(Debug, Clone, Serialize)]
pub struct LineFilter {
    /// The key (`brand`, `store`, ...).
    pub key: String,
    /// The listed values.
    pub values: Vec<Json>,
    /// The key took `{"not_in": [...]}`.
    pub negate: bool,
    /// JSON path of the key.
    pub path: String,
}

// ---------------------------------------------------------------------------

struct Ctx<'a> {
    code: &'a str,
}

impl Ctx<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> SegmentError {
        SegmentError {
            code: self.code.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn object<'j>(&self, v: &'j Json, path: &str) -> Result<&'j Map<String, Json>, SegmentError> {
        v.as_object()
            .ok_or_else(|| self.err(path, format!("expected an object, found {}", kind(v))))
    }

    fn array<'j>(&self, v: &'j Json, path: &str) -> Result<&'j Vec<Json>, SegmentError> {
        v.as_array()
            .ok_or_else(|| self.err(path, format!("expected a list, found {}", kind(v))))
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// Parses one segment object. `fallback` names it in errors when it has no
/// usable code.
pub fn parse_segment(v: &Json, fallback: &str) -> Result<Segment, SegmentError> {
    let code = v
        .get("code")
        .and_then(Json::as_str)
        .unwrap_or(fallback)
        .to_string();
    let cx = Ctx { code: &code };
    let obj = cx.object(v, "(segment)")?;
    for key in obj.keys() {
        if !["code", "name", "description", "mode", "active", "rule"].contains(&key.as_str()) {
            return Err(cx.err(
                key,
                "unknown key (a segment has code, name, description, mode, active, rule)",
            ));
        }
    }
    let code_v = obj.get("code").ok_or_else(|| cx.err("code", "missing"))?;
    let code_s = code_v
        .as_str()
        .ok_or_else(|| cx.err("code", "must be a string"))?;
    if code_s.is_empty()
        || !code_s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(cx.err("code", "must match [a-z0-9_]+"));
    }
    let string = |key: &str| -> Result<Option<String>, SegmentError> {
        match obj.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(cx.err(key, format!("must be a string, found {}", kind(other)))),
        }
    };
    let name = string("name")?.unwrap_or_else(|| code_s.to_string());
    let description = string("description")?;
    let mode = match string("mode")?.as_deref() {
        None | Some("dynamic") => Mode::Dynamic,
        Some("static") => Mode::Static,
        Some(other) => {
            return Err(cx.err("mode", format!("`{other}`: expected dynamic or static")));
        }
    };
    let active = match obj.get("active") {
        None => true,
        Some(Json::Bool(b)) => *b,
        Some(other) => {
            return Err(cx.err(
                "active",
                format!("must be true or false, found {}", kind(other)),
            ));
        }
    };
    let rule = obj.get("rule").ok_or_else(|| cx.err("rule", "missing"))?;
    let rule = parse_condition(&cx, rule, "rule")?;
    Ok(Segment {
        code: code_s.to_string(),
        name,
        description,
        mode,
        active,
        rule,
    })
}

const FORMS: [&str; 7] = [
    "all",
    "any",
    "not",
    "customers",
    "segment",
    "attr",
    "purchased",
];
const ATTR_OPS: [&str; 12] = [
    "in",
    "not_in",
    "all_of",
    "is_null",
    "gt",
    "gte",
    "lt",
    "lte",
    "eq",
    "between",
    "window",
    "anniversary",
];

fn parse_condition(cx: &Ctx, v: &Json, path: &str) -> Result<Condition, SegmentError> {
    let obj = cx.object(v, path)?;
    if obj.contains_key("attr") {
        return parse_attr(cx, obj, path);
    }
    let forms: Vec<&String> = obj.keys().collect();
    if forms.len() != 1 || !FORMS.contains(&forms[0].as_str()) {
        let unknown = forms.iter().find(|k| !FORMS.contains(&k.as_str()));
        return Err(match unknown {
            Some(k) => cx.err(
                &format!("{path}.{k}"),
                format!("unknown key; a condition is one of {}", FORMS.join(", ")),
            ),
            None if forms.is_empty() => cx.err(path, "empty condition"),
            None => cx.err(
                path,
                "a condition has exactly one form (all, any, not, ...)",
            ),
        });
    }
    let key = forms[0].as_str();
    let sub = &obj[key];
    let p = format!("{path}.{key}");
    match key {
        "all" | "any" => {
            let items = cx.array(sub, &p)?;
            let children = items
                .iter()
                .enumerate()
                .map(|(i, c)| parse_condition(cx, c, &format!("{p}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if key == "all" {
                Condition::All(children)
            } else {
                Condition::Any(children)
            })
        }
        "not" => Ok(Condition::Not(Box::new(parse_condition(cx, sub, &p)?))),
        "customers" => {
            let ids = cx.array(sub, &p)?;
            for (i, id) in ids.iter().enumerate() {
                if !(id.is_string() || id.is_i64() || id.is_u64()) {
                    return Err(
                        cx.err(&format!("{p}[{i}]"), "an id must be an integer or a string")
                    );
                }
            }
            Ok(Condition::Customers {
                ids: ids.clone(),
                path: p,
            })
        }
        "segment" => Ok(Condition::Segment {
            code: sub
                .as_str()
                .ok_or_else(|| cx.err(&p, "must be a segment code (string)"))?
                .to_string(),
            path: p,
        }),
        "purchased" => parse_purchase(cx, sub, &p).map(Condition::Purchased),
        _ => unreachable!("checked against FORMS"),
    }
}

fn parse_attr(cx: &Ctx, obj: &Map<String, Json>, path: &str) -> Result<Condition, SegmentError> {
    let name = obj["attr"]
        .as_str()
        .ok_or_else(|| {
            cx.err(
                &format!("{path}.attr"),
                "must be an attribute name (string)",
            )
        })?
        .to_string();
    let ops: Vec<&String> = obj.keys().filter(|k| k.as_str() != "attr").collect();
    if let Some(k) = ops.iter().find(|k| !ATTR_OPS.contains(&k.as_str())) {
        return Err(cx.err(
            &format!("{path}.{k}"),
            format!("unknown operator; expected one of {}", ATTR_OPS.join(", ")),
        ));
    }
    if ops.is_empty() {
        return Err(cx.err(
            path,
            "an attr condition needs an operator (in, gt, window, ...)",
        ));
    }
    let comparisons = ["gt", "gte", "lt", "lte", "eq", "between"];
    let all_cmp = ops.iter().all(|k| comparisons.contains(&k.as_str()));
    if ops.len() > 1 && !all_cmp {
        return Err(cx.err(
            &format!("{path}.{}", ops[1]),
            "only comparisons (gt, gte, lt, lte, eq, between) combine in one attr condition",
        ));
    }
    let list = |k: &str| -> Result<Vec<Json>, SegmentError> {
        let p = format!("{path}.{k}");
        let items = cx.array(&obj[k], &p)?;
        for (i, it) in items.iter().enumerate() {
            if it.is_null() || it.is_array() || it.is_object() {
                return Err(cx.err(
                    &format!("{p}[{i}]"),
                    format!("a value cannot be {}", kind(it)),
                ));
            }
        }
        Ok(items.clone())
    };
    let test = if all_cmp {
        let mut cmps = Vec::new();
        for k in &ops {
            let p = format!("{path}.{k}");
            let v = &obj[k.as_str()];
            let op = match k.as_str() {
                "gt" => CmpOp::Gt,
                "gte" => CmpOp::Gte,
                "lt" => CmpOp::Lt,
                "lte" => CmpOp::Lte,
                "eq" => CmpOp::Eq,
                _ => {
                    let pair = cx.array(v, &p)?;
                    if pair.len() != 2 {
                        return Err(cx.err(&p, "between takes [low, high]"));
                    }
                    if between_reversed(&pair[0], &pair[1]) {
                        return Err(cx.err(&p, "between [x, y] needs x <= y"));
                    }
                    cmps.push((CmpOp::Gte, pair[0].clone()));
                    cmps.push((CmpOp::Lte, pair[1].clone()));
                    continue;
                }
            };
            cmps.push((op, v.clone()));
        }
        for (op, v) in &cmps {
            if !(v.is_number() || v.is_string()) {
                return Err(cx.err(
                    path,
                    format!("{op:?} needs a number or a date, found {}", kind(v)).to_lowercase(),
                ));
            }
        }
        AttrTest::Compare(cmps)
    } else {
        let k = ops[0].as_str();
        let p = format!("{path}.{k}");
        match k {
            "in" => AttrTest::In(list(k)?),
            "not_in" => AttrTest::NotIn(list(k)?),
            "all_of" => AttrTest::AllOf(list(k)?),
            "is_null" => AttrTest::IsNull(
                obj[k]
                    .as_bool()
                    .ok_or_else(|| cx.err(&p, "is_null takes true or false"))?,
            ),
            "window" => AttrTest::Window(parse_window(cx, &obj[k], &p)?),
            "anniversary" => AttrTest::Anniversary(parse_anniversary(cx, &obj[k], &p)?),
            _ => unreachable!("checked against ATTR_OPS"),
        }
    };
    Ok(Condition::Attr {
        name,
        test,
        path: path.to_string(),
    })
}

/// Whether `[x, y]` has x > y (numbers compared exactly, or dates).
fn between_reversed(x: &Json, y: &Json) -> bool {
    let parts = |v: &Json| v.as_number().and_then(|n| decimal_parts(&n.to_string()));
    if let (Some(a), Some(b)) = (parts(x), parts(y)) {
        return cmp_parts(&a, &b).is_gt();
    }
    match (
        x.as_str().and_then(parse_date),
        y.as_str().and_then(parse_date),
    ) {
        (Some(a), Some(b)) => a > b,
        _ => false,
    }
}

/// Parses `YYYY-MM-DD` to a day number.
pub fn parse_date(s: &str) -> Option<i32> {
    if s.len() != 10 {
        return None;
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(segdex_index::time::day_number)
}

fn parse_window(cx: &Ctx, v: &Json, path: &str) -> Result<Window, SegmentError> {
    if let Some(s) = v.as_str() {
        return Ok(match s {
            "all_time" => Window::AllTime,
            "today" => Window::Today,
            "yesterday" => Window::Yesterday,
            "this_week" => Window::ThisWeek,
            "last_week" => Window::LastWeek,
            "current_week" => Window::CurrentWeek,
            "month_to_date" => Window::MonthToDate,
            "previous_month" => Window::PreviousMonth,
            "current_month" => Window::CurrentMonth,
            "year_to_date" => Window::YearToDate,
            "last_year" => Window::LastYear,
            other => return Err(cx.err(path, format!("unknown window `{other}`"))),
        });
    }
    let obj = cx.object(v, path)?;
    if obj.len() != 1 {
        return Err(cx.err(path, "a window object has exactly one key"));
    }
    let (k, arg) = obj.iter().next().expect("one key");
    let p = format!("{path}.{k}");
    let positive = || -> Result<u32, SegmentError> {
        arg.as_u64()
            .filter(|&n| (1..=1_000_000).contains(&n))
            .map(|n| n as u32)
            .ok_or_else(|| cx.err(&p, "needs a whole number N >= 1"))
    };
    let date = |v: &Json, p: &str| -> Result<i32, SegmentError> {
        v.as_str()
            .and_then(parse_date)
            .ok_or_else(|| cx.err(p, "needs a date YYYY-MM-DD"))
    };
    let pair = || -> Result<(&Json, &Json), SegmentError> {
        match arg.as_array() {
            Some(a) if a.len() == 2 => Ok((&a[0], &a[1])),
            _ => Err(cx.err(&p, "needs a pair [a, b]")),
        }
    };
    Ok(match k.as_str() {
        "last_days" => Window::LastDays(positive()?),
        "next_days" => Window::NextDays(positive()?),
        "last_months" => Window::LastMonths(positive()?),
        "relative_days" => {
            let (a, b) = pair()?;
            let int = |v: &Json, i: usize| {
                v.as_i64()
                    .filter(|n| n.unsigned_abs() <= 1_000_000)
                    .map(|n| n as i32)
                    .ok_or_else(|| cx.err(&format!("{p}[{i}]"), "needs a whole number of days"))
            };
            let (a, b) = (int(a, 0)?, int(b, 1)?);
            if a > b {
                return Err(cx.err(&p, "relative_days [a, b] needs a <= b"));
            }
            Window::RelativeDays(a, b)
        }
        "between" => {
            let (a, b) = pair()?;
            let (a, b) = (date(a, &format!("{p}[0]"))?, date(b, &format!("{p}[1]"))?);
            if a > b {
                return Err(cx.err(&p, "between [d1, d2] needs d1 <= d2"));
            }
            Window::Between(a, b)
        }
        "since" => Window::Since(date(arg, &p)?),
        "before" => Window::Before(date(arg, &p)?),
        "month_days" => {
            return Err(cx.err(&p, "month_days is only allowed inside anniversary"));
        }
        other => return Err(cx.err(&p, format!("unknown window `{other}`"))),
    })
}

fn parse_month_day(s: &str) -> Option<(u32, u32)> {
    let (m, d) = s.split_once('-')?;
    if m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (m, d) = (m.parse().ok()?, d.parse().ok()?);
    chrono::NaiveDate::from_ymd_opt(2000, m, d).map(|_| (m, d))
}

fn parse_anniversary(cx: &Ctx, v: &Json, path: &str) -> Result<Anniversary, SegmentError> {
    if let Some(arg) = v.as_object().and_then(|o| o.get("month_days")) {
        let p = format!("{path}.month_days");
        if v.as_object().is_some_and(|o| o.len() != 1) {
            return Err(cx.err(path, "a window object has exactly one key"));
        }
        let pair = cx.array(arg, &p)?;
        if pair.len() != 2 {
            return Err(cx.err(&p, "needs [\"MM-DD\", \"MM-DD\"]"));
        }
        let md = |i: usize| {
            pair[i]
                .as_str()
                .and_then(parse_month_day)
                .ok_or_else(|| cx.err(&format!("{p}[{i}]"), "needs a month-day \"MM-DD\""))
        };
        return Ok(Anniversary::MonthDays(md(0)?, md(1)?));
    }
    Ok(Anniversary::Days(parse_window(cx, v, path)?))
}

const WHERE_ORDER_KEYS: [&str; 4] = ["store", "payment_method", "offer_code", "channel"];

fn parse_purchase(cx: &Ctx, v: &Json, path: &str) -> Result<Purchase, SegmentError> {
    let obj = cx.object(v, path)?;
    for k in obj.keys() {
        if !["where", "window", "having"].contains(&k.as_str()) {
            return Err(cx.err(
                &format!("{path}.{k}"),
                "unknown key (purchased takes where, window, having)",
            ));
        }
    }
    let mut filters = Vec::new();
    if let Some(w) = obj.get("where") {
        let wp = format!("{path}.where");
        for (key, spec) in cx.object(w, &wp)? {
            let p = format!("{wp}.{key}");
            let (values, negate) = match spec {
                Json::Array(a) => (a.clone(), false),
                Json::Object(o) if o.len() == 1 && o.contains_key("not_in") => (
                    cx.array(&o["not_in"], &format!("{p}.not_in"))?.clone(),
                    true,
                ),
                _ => {
                    return Err(cx.err(
                        &p,
                        "a where key takes a list of values or {\"not_in\": [...]}",
                    ));
                }
            };
            for (i, it) in values.iter().enumerate() {
                if it.is_null() || it.is_array() || it.is_object() {
                    return Err(cx.err(
                        &format!("{p}[{i}]"),
                        format!("a value cannot be {}", kind(it)),
                    ));
                }
            }
            filters.push(LineFilter {
                key: key.clone(),
                values,
                negate,
                path: p,
            });
        }
    }
    let window = match obj.get("window") {
        Some(w) => parse_window(cx, w, &format!("{path}.window"))?,
        None => Window::AllTime,
    };
    let mut having = Vec::new();
    if let Some(h) = obj.get("having") {
        let hp = format!("{path}.having");
        for (m, tests) in cx.object(h, &hp)? {
            let mp = format!("{hp}.{m}");
            let measure = match m.as_str() {
                "orders" => Measure::Orders,
                "lines" => Measure::Lines,
                "units" => Measure::Units,
                "spend" => Measure::Spend,
                "avg_order_value" => Measure::AvgOrderValue,
                _ => {
                    return Err(cx.err(
                        &mp,
                        "unknown measure (orders, lines, units, spend, avg_order_value)",
                    ));
                }
            };
            let tests = cx.object(tests, &mp)?;
            if tests.is_empty() {
                return Err(cx.err(&mp, "needs at least one of gt, gte, lt, lte, eq, between"));
            }
            for (op, x) in tests {
                let p = format!("{mp}.{op}");
                let num = |x: &Json, p: &str| match x.as_number() {
                    Some(n) => Decimal::threshold_from_json(n).map_err(|e| cx.err(p, &e)),
                    None => Err(cx.err(p, "needs a number")),
                };
                match op.as_str() {
                    "between" => {
                        let pair = cx.array(x, &p)?;
                        if pair.len() != 2 {
                            return Err(cx.err(&p, "between takes [low, high]"));
                        }
                        let lo = num(&pair[0], &format!("{p}[0]"))?;
                        let hi = num(&pair[1], &format!("{p}[1]"))?;
                        if between_reversed(&pair[0], &pair[1]) {
                            return Err(cx.err(&p, "between [x, y] needs x <= y"));
                        }
                        having.push((measure, CmpOp::Gte, lo));
                        having.push((measure, CmpOp::Lte, hi));
                    }
                    "gt" | "gte" | "lt" | "lte" | "eq" => {
                        let cmp = match op.as_str() {
                            "gt" => CmpOp::Gt,
                            "gte" => CmpOp::Gte,
                            "lt" => CmpOp::Lt,
                            "lte" => CmpOp::Lte,
                            _ => CmpOp::Eq,
                        };
                        having.push((measure, cmp, num(x, &p)?));
                    }
                    _ => {
                        return Err(cx.err(&p, "unknown operator (gt, gte, lt, lte, eq, between)"));
                    }
                }
            }
        }
    }
    Ok(Purchase {
        filters,
        window,
        having,
        path: path.to_string(),
    })
}

/// The order attribute keys of `where`.
pub fn is_order_key_list() -> impl Iterator<Item = &'static str> {
    WHERE_ORDER_KEYS.into_iter()
}

/// Whether `key` names an order attribute in `where` (else a product one).
pub fn is_order_key(key: &str) -> bool {
    WHERE_ORDER_KEYS.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Json) -> String {
        parse_segment(&v, "#0").unwrap_err().to_string()
    }

    #[test]
    fn parses_the_spec_example() {
        let s = parse_segment(
            &json!({"code": "phat_panda_preroll_lovers", "name": "P", "mode": "dynamic", "active": true,
              "rule": {"all": [
                {"attr": "customer_type", "in": ["Recreational", "Medical"]},
                {"purchased": {"where": {"brand": ["Phat Panda"], "product_type": ["Prerolls"]},
                               "having": {"units": {"gt": 15}}}},
                {"purchased": {"where": {"brand": ["Phat Panda"]}, "window": {"last_days": 14}}}]}}),
            "#0",
        )
        .unwrap();
        let Condition::All(c) = &s.rule else { panic!() };
        let Condition::Purchased(p) = &c[1] else {
            panic!()
        };
        assert_eq!(p.filters.len(), 2);
        assert_eq!(
            p.having,
            vec![(
                Measure::Units,
                CmpOp::Gt,
                Decimal {
                    mantissa: 15,
                    scale: 0
                }
            )]
        );
    }

    #[test]
    fn errors_name_the_path() {
        let cases = [
            (
                json!({"code": "a", "rule": {"all": [{"attr": "x", "in": []}, {"atr": 1}]}}),
                "rule.all[1].atr",
            ),
            (
                json!({"code": "a", "rule": {"attr": "x", "window": {"last_days": 0}}}),
                "rule.window.last_days",
            ),
            (
                json!({"code": "a", "rule": {"attr": "x", "window": {"month_days": ["01-01", "01-02"]}}}),
                "only allowed inside anniversary",
            ),
            (
                json!({"code": "a", "rule": {"attr": "x", "window": {"between": ["2024-02-01", "2024-01-01"]}}}),
                "d1 <= d2",
            ),
            (
                json!({"code": "a", "rule": {"attr": "x", "window": {"relative_days": [3, 1]}}}),
                "a <= b",
            ),
            (
                json!({"code": "a", "rule": {"purchased": {"having": {"spend": {"gt": "x"}}}}}),
                "rule.purchased.having.spend.gt",
            ),
            (
                json!({"code": "a", "rule": {"purchased": {"when": 1}}}),
                "rule.purchased.when",
            ),
            (json!({"code": "A", "rule": {"all": []}}), "[a-z0-9_]+"),
            (
                json!({"code": "a", "rule": {"all": []}, "colour": 1}),
                "colour: unknown key",
            ),
            (
                json!({"code": "a", "rule": {"attr": "x", "in": ["a"], "gt": 1}}),
                "only comparisons",
            ),
            (
                json!({"code": "a", "rule": {"attr": "x", "anniversary": {"month_days": ["02-30", "03-01"]}}}),
                "month_days[0]",
            ),
        ];
        for (v, needle) in cases {
            let e = err(v);
            assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        }
    }

    #[test]
    fn canonical_keys_ignore_paths_order_and_nesting() {
        let c = |v: Json| {
            parse_segment(&json!({"code": "x", "rule": v}), "#0")
                .unwrap()
                .rule
                .canonical()
        };
        let a = c(
            json!({"all": [{"attr": "t", "in": ["b", "a"]}, {"purchased": {"where": {"brand": ["X"], "store": [1]}}}]}),
        );
        let b = c(
            json!({"all": [{"all": [{"purchased": {"where": {"store": [1], "brand": ["X"]}}}]}, {"attr": "t", "in": ["a", "b"]}]}),
        );
        assert_eq!(a, b);
        assert_eq!(
            c(json!({"not": {"not": {"attr": "t", "in": ["a"]}}})),
            c(json!({"attr": "t", "in": ["a"]}))
        );
        assert_ne!(
            c(json!({"attr": "t", "in": ["a"]})),
            c(json!({"attr": "t", "not_in": ["a"]}))
        );
        assert_ne!(
            c(json!({"purchased": {"where": {"brand": ["X"]}}})),
            c(json!({"purchased": {"where": {"brand": {"not_in": ["X"]}}}}))
        );
        assert_ne!(
            c(json!({"all": [{"attr": "t", "in": ["a"]}]})),
            c(json!({"any": [{"attr": "t", "in": ["b"]}]}))
        );
    }

    #[test]
    fn decimals_are_exact() {
        let d = |s: &str| Decimal::from_json(&serde_json::from_str(s).unwrap()).unwrap();
        assert_eq!(
            d("33.33"),
            Decimal {
                mantissa: 3333,
                scale: 2
            }
        );
        assert_eq!(
            d("100"),
            Decimal {
                mantissa: 100,
                scale: 0
            }
        );
        assert_eq!(
            d("1.5e2"),
            Decimal {
                mantissa: 150,
                scale: 0
            }
        );
    }

    #[test]
    fn attribute_thresholds_scale_exactly_and_saturate_past_every_key() {
        let f = |s: &str, shift: u32| scaled_floor_ceil(&serde_json::from_str(s).unwrap(), shift);
        assert_eq!(f("-0.125", 2), Some((-13, -12)));
        assert_eq!(f("12.5", 0), Some((12, 13)));
        assert_eq!(f("12.50", 1), Some((125, 125)));
        assert_eq!(f("-0.0", 3), Some((0, 0)));
        assert_eq!(f("0.001", 0), Some((0, 1)));
        assert_eq!(f("-0.001", 0), Some((-1, 0)));
        assert_eq!(f("1.5e2", 0), Some((150, 150)));
        // Far more places than any stored scale, exactly.
        assert_eq!(
            f("20.0000000000000000000000000000000000000001", 0),
            Some((20, 21))
        );
        assert_eq!(
            f("-7.99999999999999999999999999999999999999", 2),
            Some((-800, -799))
        );
        // Past every key, with the sign, whatever the shift.
        assert_eq!(f("1e30", 0), Some((BEYOND_KEYS, BEYOND_KEYS)));
        assert_eq!(f("1e12", 18), Some((BEYOND_KEYS, BEYOND_KEYS)));
        assert_eq!(f("-1e400", 0), Some((-BEYOND_KEYS, -BEYOND_KEYS)));
        let below = 10i128.pow(30) - 1;
        assert_eq!(f("999999999999999999999999999999", 0), Some((below, below)));
    }

    #[test]
    fn float_thresholds_compare_with_each_doubles_shortest_text() {
        use std::cmp::Ordering::*;
        let f = |s: &str| float_threshold(&serde_json::from_str(s).unwrap()).unwrap();
        assert_eq!(f("0.1"), (0.1, Equal));
        assert_eq!(f("2.50"), (2.5, Equal));
        assert_eq!(f("-0.0"), (0.0, Equal));
        // Same nearest double, but the double's text 0.1 is below / above.
        assert_eq!(f("0.10000000000000001"), (0.1, Less));
        assert_eq!(f("0.09999999999999999"), (0.09999999999999999, Equal));
        assert_eq!(f("0.099999999999999999"), (0.1, Greater));
        assert_eq!(f("1e-400"), (0.0, Less));
        assert_eq!(f("1e400"), (f64::INFINITY, Greater));
        assert_eq!(f("-1e400"), (f64::NEG_INFINITY, Less));
    }

    #[test]
    fn thresholds_keep_their_text_exactly_and_read_huge_ones_as_the_bound() {
        let t = |s: &str| Decimal::threshold_from_json(&serde_json::from_str(s).unwrap());
        let dec = |mantissa: i128, scale: u32| Ok(Decimal { mantissa, scale });
        // The JSON text, not a float near it (1e-28 is not a double).
        assert_eq!(t("1e-28"), dec(1, 28));
        assert_eq!(t("0.0000000000000000000000000001"), dec(1, 28));
        assert_eq!(
            t("19.990000000000000000000000001"),
            dec(19_990_000_000_000_000_000_000_000_001, 27)
        );
        assert_eq!(
            t("123456789.123456789123456789"),
            dec(123_456_789_123_456_789_123_456_789, 18)
        );
        assert_eq!(t("-0.0"), dec(0, 0));
        assert_eq!(t("2.50E+1"), dec(25, 0));
        // At or past 10^20 in magnitude: the bound, with the sign.
        assert_eq!(
            t("99999999999999999999"),
            dec(99_999_999_999_999_999_999, 0)
        );
        assert_eq!(t("1e20"), dec(MEASURE_BOUND, 0));
        assert_eq!(t("100000000000000000000.5"), dec(MEASURE_BOUND, 0));
        assert_eq!(t("-1e40"), dec(-MEASURE_BOUND, 0));
        assert_eq!(t("1e2147483647"), dec(MEASURE_BOUND, 0));
        // What does not fit is an error that says so.
        assert!(
            t("1e-31")
                .unwrap_err()
                .contains("more than 30 decimal places")
        );
        assert!(
            t("12345678901234567890.123456789012345678901")
                .unwrap_err()
                .contains("too many significant digits")
        );
        let e = err(json!({"code": "x", "name": "x",
            "rule": {"purchased": {"having": {"spend": {"gt": 1e-31}}}}}));
        assert!(
            e.contains("rule.purchased.having.spend.gt") && e.contains("decimal places"),
            "{e}"
        );
    }

    #[test]
    fn between_bounds_compare_exactly_at_any_size() {
        let reversed = |a: &str, b: &str| {
            between_reversed(
                &serde_json::from_str(a).unwrap(),
                &serde_json::from_str(b).unwrap(),
            )
        };
        assert!(reversed("1e41", "1e40"));
        assert!(!reversed("1e40", "1e41"));
        assert!(reversed("0.30000000000000000000000000000000001", "0.3"));
        assert!(!reversed("0.3", "0.30000000000000000000000000000000001"));
        assert!(!reversed("-5", "-5.0"));
        assert!(reversed("-4.9", "-5"));
        assert!(reversed("0", "-0.000001"));
        assert!(!reversed("-0.0", "0"));
        assert!(!reversed("12", "1.2e1") && reversed("12.01", "1.2e1"));
    }
}
