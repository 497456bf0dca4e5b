//! The index's self-description, stored as JSON in the index file's first
//! section: what fields exist, their kinds, value dictionaries, and which
//! sections hold their bitmaps.

use serde::{Deserialize, Serialize};

/// Bumped whenever the on-disk layout changes; other versions are refused.
pub const FORMAT_VERSION: u32 = 7;
/// The `format` string of a segdex index manifest.
pub const FORMAT_NAME: &str = "segdex-index";
/// Customers per chunk: the unit of parallel evaluation and of sharding.
pub const CHUNK_ROWS: u32 = 1 << 16;

/// A categorical value: a string, an integer id, or a flag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A flag value.
    Bool(bool),
    /// An integer value (ids such as store numbers).
    Int(i64),
    /// A string value (compared exactly).
    Str(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// The type of an external key column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// int64 ids.
    Int,
    /// string ids.
    Str,
}

/// How a field is indexed, and so which operators it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// One value per row: a bitmap per value.
    Categorical,
    /// A list of values per row: a bitmap per value, several bits per row.
    Multi,
    /// A boolean: categorical over `true` / `false`.
    Flag,
    /// Integers, decimals or floats: a bit-sliced index.
    Numeric,
    /// Dates and timestamps (their local day): a bitmap per year, month
    /// and day that holds a value, plus a bitmap per month-day.
    Date,
}

/// How numeric values map to the bit-sliced index's unsigned offsets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum NumEncoding {
    /// `offset = value - base` for integers (dates: day numbers).
    Int {
        /// The smallest value.
        base: i64,
    },
    /// `offset = unscaled - base` for decimals `unscaled × 10^-scale`.
    Decimal {
        /// The smallest unscaled value.
        base: i64,
        /// The column's scale.
        scale: i8,
    },
    /// `offset = ordered_bits(value) - base` for floats (see
    /// [`float_key`]).
    Float {
        /// The smallest ordered key.
        base: u64,
    },
}

/// Maps an f64 to a u64 whose unsigned order is the numeric order.
pub fn float_key(x: f64) -> u64 {
    let x = if x == 0.0 { 0.0 } else { x }; // -0.0 == 0.0
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// A bit-sliced index's sections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BsiMeta {
    /// How values map to offsets.
    pub encoding: NumEncoding,
    /// Section of each slice, least significant first.
    pub slices: Vec<u32>,
    /// Section of the rows that have a value.
    pub exists: u32,
}

/// A date attribute's time buckets (see [`crate::dates`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct DateSections {
    /// Section of the [`crate::dates::DateTable`]: where each year's,
    /// month's and day's bitmap is.
    pub table: u32,
    /// Section of the rows that have a value (not null).
    pub exists: u32,
}

/// One indexed attribute (of customers, of products, or an order attribute).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Field {
    /// The attribute's name in rules.
    pub name: String,
    /// The source column it came from (empty for an order attribute whose
    /// column is absent from the input).
    pub source: String,
    /// How it is indexed.
    pub kind: FieldKind,
    /// Categorical / multi / flag: the distinct values, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Value>,
    /// The bitmap section of each value, parallel to `values`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_sections: Vec<u32>,
    /// Section of the rows whose value is null (or an empty list).
    pub null_section: u32,
    /// Numeric: the bit-sliced index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bsi: Option<BsiMeta>,
    /// Date: the year / month / day buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<DateSections>,
    /// Date: the bitmap section per month-day slot (366, see
    /// [`crate::time::month_day_slot`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub month_day_sections: Vec<u32>,
    /// Categorical values are integers (JSON numbers) rather than strings.
    #[serde(default)]
    pub int_values: bool,
}

impl Field {
    /// The position of `v` among the field's values.
    pub fn value_index(&self, v: &Value) -> Option<usize> {
        self.values.binary_search(v).ok()
    }
}

/// Customer columns kept as text for exports (SPEC §5).
pub const STORED_COLUMNS: [&str; 6] = [
    "first_name",
    "last_name",
    "email",
    "registered_at",
    "country",
    "postal_code",
];

/// A customer column stored as text: `customers + 1` u64 offsets, then the
/// UTF-8 bytes. Nulls are empty; timestamps are their local date.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredColumn {
    /// The column (one of [`STORED_COLUMNS`]).
    pub name: String,
    /// Its section.
    pub section: u32,
}

/// A column left out of the index because of its type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unindexed {
    /// Its name.
    pub name: String,
    /// Its Arrow type, as text.
    pub data_type: String,
}

/// An external-id dictionary's sections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdsMeta {
    /// int64 or string ids.
    pub kind: IdKind,
    /// Section with the ids in row order, which is ascending id order
    /// (integers by value, strings by their bytes).
    pub values: u32,
    /// Number of ids.
    pub count: u32,
}

/// Counts of what was read and skipped during the build.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildSummary {
    /// Rows read from each table (table name → rows).
    pub rows_read: std::collections::BTreeMap<String, u64>,
    /// Lines skipped, by reason (reason → count).
    pub lines_skipped: std::collections::BTreeMap<String, u64>,
    /// Lines kept with a null line_total (counted as 0 spend).
    pub null_line_totals: u64,
    /// Lines kept with a null quantity (counted as 0 units).
    pub null_quantities: u64,
    /// Orders that have no line.
    pub orders_without_lines: u64,
    /// Indexed fields.
    pub fields: u64,
    /// Bitmaps written.
    pub bitmaps: u64,
    /// Bytes of the index directory.
    pub bytes: u64,
    /// Seconds the build took.
    pub seconds: f64,
}

/// Where the purchase data lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurchasesMeta {
    /// Line-store section of each customer chunk.
    pub chunks: Vec<u32>,
    /// Section: u32 per product, the section of its all-time customer bitmap.
    pub product_all_time: u32,
    /// Section: per product, its monthly customer bitmaps (see
    /// `ProductMonths`).
    pub product_months: u32,
    /// First day number of `any_day` (days before it have no orders).
    pub first_day: i32,
    /// Section per day from `first_day`: customers with any kept line that
    /// local day.
    pub any_day: Vec<u32>,
    /// Section per calendar month from the month of `first_day` to that
    /// of the last day with orders: customers with any kept line that
    /// local month (the union of its days in `any_day`), so a long window
    /// is a few months and its edge days, not hundreds of days.
    pub any_month: Vec<u32>,
    /// Section: customers with at least one kept line.
    pub any_all_time: u32,
    /// Order attributes (store, payment_method, offer_code, channel): their
    /// value dictionaries, with all-time customer bitmaps per value.
    pub order_attrs: Vec<Field>,
}

impl PurchasesMeta {
    /// The first and last day with orders (`None` when there are none).
    pub fn order_days(&self) -> Option<(i32, i32)> {
        let n = i32::try_from(self.any_day.len()).ok()?;
        (n > 0).then(|| (self.first_day, self.first_day + n - 1))
    }
}

/// The index's complete self-description.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// IANA time zone of every calendar computation.
    pub timezone: String,
    /// Number of customers (row ids are `0..customers`).
    pub customers: u32,
    /// Number of products.
    pub products: u32,
    /// Orders kept (internal orders).
    pub orders: u64,
    /// Lines kept.
    pub lines: u64,
    /// Customer external ids.
    pub customer_ids: IdsMeta,
    /// Product external ids.
    pub product_ids: IdsMeta,
    /// Indexed customer attributes.
    pub customer_fields: Vec<Field>,
    /// Customer columns stored but not indexed (cannot be used in rules).
    pub stored_only: Vec<String>,
    /// Customer columns kept as text for exports.
    #[serde(default)]
    pub stored: Vec<StoredColumn>,
    /// Custom customer columns of a type that cannot be indexed.
    #[serde(default)]
    pub customer_unindexed: Vec<Unindexed>,
    /// Indexed product attributes (bitmaps over product numbers).
    pub product_fields: Vec<Field>,
    /// Custom product columns of a type `where` cannot use.
    #[serde(default)]
    pub product_unindexed: Vec<Unindexed>,
    /// Purchases.
    pub purchases: PurchasesMeta,
    /// What the build read and skipped.
    pub summary: BuildSummary,
}

/// The manifest file (`manifest.json`) of an index directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The layout version, [`FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// The section file's name inside the directory.
    pub data_file: String,
    /// Its exact size in bytes.
    pub data_bytes: u64,
    /// The section holding the [`Meta`] JSON.
    pub meta_section: u32,
    /// The segdex version that wrote it.
    pub written_by: String,
}
