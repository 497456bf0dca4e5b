//! A deterministic generator of realistic retail datasets: the four tables
//! of SPEC §1 as Parquet, at any scale, with bounded memory.
//!
//! What makes the data realistic enough to exercise an engine:
//! * sparse, shuffled customer ids; a quarter of customers never order;
//! * nulls in nullable columns, empty tag lists, birthdays on 29 February,
//!   names with commas, quotes, apostrophes and accents;
//! * Zipf-popular brands and products, customers with brand and product-type
//!   affinities, power-law purchase frequency (a few customers with hundreds
//!   of orders), churned customers;
//! * seasonality (weekends, December, 4/20), orders close to local midnight
//!   in the stores' time zone (America/Los_Angeles), decimal money, a few
//!   null line totals.
//!
//! Customers are generated in blocks of 65,536 from a ChaCha RNG seeded by
//! (seed, block), in parallel, and written in block order, so the output is
//! byte-identical for the same options whatever the thread count. Each block
//! is written as it is made: memory stays bounded at any scale.

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{Datelike, NaiveDate, TimeZone};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use rayon::prelude::*;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Customers per generated block (one RNG stream each).
const BLOCK: u64 = 65_536;
/// Blocks generated in parallel before writing.
const WAVE: usize = 4;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Number of customers.
    pub customers: u64,
    /// Random seed: the same options give byte-identical files.
    pub seed: u64,
    /// The last day with orders.
    pub end_date: NaiveDate,
    /// Years of order history before `end_date`.
    pub years: u32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            customers: 20_000,
            seed: 42,
            end_date: NaiveDate::from_ymd_opt(2026, 11, 20).expect("valid date"),
            years: 4,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Customer rows.
    pub customers: u64,
    /// Order rows.
    pub orders: u64,
    /// Order line rows.
    pub order_lines: u64,
    /// Product rows.
    pub products: u64,
    /// Bytes of the four files.
    pub bytes: u64,
}

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum DatagenError {
    /// Writing failed.
    #[error("{path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Options that cannot be generated.
    #[error("{0}")]
    Options(String),
}

// ---------------------------------------------------------------------------
// Vocabulary

const PRODUCT_TYPES: [(&str, f64, i64); 9] = [
    // (type, popularity, base price in cents)
    ("Flower", 30.0, 3500),
    ("Prerolls", 20.0, 1200),
    ("Edibles", 16.0, 2000),
    ("Vapes", 14.0, 4000),
    ("Concentrates", 7.0, 5000),
    ("Beverages", 4.0, 900),
    ("Tinctures", 3.0, 4500),
    ("Topicals", 3.0, 3000),
    ("Accessories", 3.0, 1500),
];
const PLANT_TYPES: [&str; 4] = ["Flower", "Prerolls", "Vapes", "Concentrates"];
const STRAINS: [&str; 4] = ["Indica", "Sativa", "Hybrid", "CBD"];
const PRODUCT_TAGS: [&str; 5] = ["Sale", "New", "Organic", "Staff Pick", "Limited"];
const BRAND_PARTS: [&str; 20] = [
    "Green", "Sky", "High", "Golden", "Emerald", "Coastal", "Pacific", "Wild", "Sunset",
    "Mountain", "River", "Cloud", "Star", "Forest", "Desert", "Urban", "Lucky", "Royal", "Ocean",
    "Canyon",
];
const BRAND_SUFFIXES: [&str; 6] = ["Farms", "Co.", "Labs", "Gardens", "Collective", "Brands"];
const FIRST_NAMES: [&str; 24] = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sofía", "Lucas", "Mia", "Zoë", "Ethan",
    "Chloé", "Aiden", "Amara", "Kai", "Léa", "Jamal", "Priya", "Hiroshi", "Ana", "Björn", "Maya",
    "D'Andre", "Renée",
];
const LAST_NAMES: [&str; 24] = [
    "Smith",
    "Johnson",
    "Garcia",
    "Nuñez",
    "O'Brien",
    "Nguyen",
    "Kim",
    "Patel",
    "Müller",
    "Rossi",
    "Dubois",
    "Smith, Jr.",
    "Brown",
    "Lee",
    "Wilson",
    "Martínez",
    "Anderson",
    "Thomas",
    "Okafor",
    "Kowalski",
    "Jackson",
    "\"Doc\" Holliday",
    "Lopez",
    "Walker",
];
const CUSTOMER_TYPES: [(&str, f64); 4] = [
    ("Recreational", 75.0),
    ("Medical", 18.0),
    ("Employee", 4.0),
    ("Wholesale", 3.0),
];
const CUSTOMER_TAGS: [(&str, f64); 4] = [
    ("Local", 0.40),
    ("Newsletter", 0.30),
    ("Tourist", 0.10),
    ("VIP", 0.05),
];
const TIERS: [&str; 4] = ["Bronze", "Silver", "Gold", "Platinum"];
const PAYMENTS: [(&str, f64); 5] = [
    ("cash", 40.0),
    ("debit", 30.0),
    ("credit", 20.0),
    ("gift_card", 5.0),
    ("mobile", 5.0),
];
const OFFERS: [&str; 4] = ["WELCOME10", "420DEAL", "LOYALTY5", "BDAY"];
const CHANNELS: [(&str, f64); 3] = [("in_store", 80.0), ("online", 12.0), ("delivery", 8.0)];
const STORES: i64 = 20;

/// Draws an index with probability proportional to its weight.
#[derive(Debug, Clone)]
struct Weighted {
    cum: Vec<f64>,
}

impl Weighted {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let cum = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Self { cum }
    }
    fn zipf(n: usize, s: f64) -> Self {
        Self::new((1..=n).map(|k| 1.0 / (k as f64).powf(s)))
    }
    fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        let x = rng.random::<f64>() * self.cum.last().copied().unwrap_or(0.0);
        self.cum
            .partition_point(|&c| c <= x)
            .min(self.cum.len() - 1)
    }
}

// ---------------------------------------------------------------------------
// Products

#[derive(Debug, Clone)]
struct Product {
    id: i64,
    brand: Option<String>,
    brand_index: usize,
    product_type: usize,
    price_cents: i64,
}

struct Catalogue {
    products: Vec<Product>,
    /// Popularity over all products.
    popular: Weighted,
    /// Products of each brand, and of each (brand, type).
    by_brand: Vec<Vec<usize>>,
    by_brand_type: std::collections::HashMap<(usize, usize), Vec<usize>>,
    brands: Weighted,
    types: Weighted,
}

fn brand_names() -> Vec<String> {
    let mut names = vec!["Phat Panda".to_string(), "Cheeba Chews".to_string()];
    'outer: for suffix in BRAND_SUFFIXES {
        for part in BRAND_PARTS {
            if names.len() >= 62 {
                break 'outer;
            }
            names.push(format!("{part} {suffix}"));
        }
    }
    names
}

fn catalogue(seed: u64) -> (Catalogue, RecordBatch) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_0000_0000_0001);
    let brands = brand_names();
    let brand_pick = Weighted::zipf(brands.len(), 1.05);
    let type_pick = Weighted::new(PRODUCT_TYPES.iter().map(|t| t.1));
    let n = 2_400;
    let mut products = Vec::with_capacity(n);
    let (mut ids, mut skus, mut brand_col, mut types, mut strains, mut names) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut tiers = StringBuilder::new();
    for i in 0..n {
        let b = brand_pick.pick(&mut rng);
        let t = match brands[b].as_str() {
            "Phat Panda" if rng.random_bool(0.6) => 1,
            "Cheeba Chews" => 2,
            _ => type_pick.pick(&mut rng),
        };
        let type_name = PRODUCT_TYPES[t].0;
        let brand = (!rng.random_bool(0.01)).then(|| brands[b].clone());
        let strain = PLANT_TYPES
            .contains(&type_name)
            .then(|| STRAINS[rng.random_range(0..STRAINS.len())]);
        let price = PRODUCT_TYPES[t].2 * rng.random_range(60..180) / 100 + 49;
        let id = 10_000 + i as i64 * 7;
        ids.push(id);
        skus.push(format!("SKU-{:06}", i + 1));
        names.push(format!(
            "{} {} #{}",
            brand.as_deref().unwrap_or("House"),
            type_name,
            i % 97
        ));
        brand_col.push(brand.clone());
        types.push(type_name);
        strains.push(strain);
        for tag in PRODUCT_TAGS {
            if rng.random_bool(0.15) {
                tags.values().append_value(tag);
            }
        }
        tags.append(true);
        tiers.append_option(strain.map(|_| ["Low", "Medium", "High"][rng.random_range(0..3)]));
        products.push(Product {
            id,
            brand,
            brand_index: b,
            product_type: t,
            price_cents: price,
        });
    }
    let popular = Weighted::zipf(n, 0.9);
    let mut by_brand = vec![Vec::new(); brands.len()];
    let mut by_brand_type: std::collections::HashMap<(usize, usize), Vec<usize>> =
        Default::default();
    for (i, p) in products.iter().enumerate() {
        if p.brand.is_some() {
            by_brand[p.brand_index].push(i);
            by_brand_type
                .entry((p.brand_index, p.product_type))
                .or_default()
                .push(i);
        }
    }
    let batch = RecordBatch::try_from_iter(vec![
        (
            "product_id",
            Arc::new(arrow_array::Int64Array::from(ids)) as ArrayRef,
        ),
        ("sku", Arc::new(arrow_array::StringArray::from(skus))),
        ("brand", Arc::new(arrow_array::StringArray::from(brand_col))),
        (
            "product_type",
            Arc::new(arrow_array::StringArray::from(types)),
        ),
        ("strain", Arc::new(arrow_array::StringArray::from(strains))),
        ("name", Arc::new(arrow_array::StringArray::from(names))),
        ("tags", Arc::new(tags.finish())),
        ("thc_tier", Arc::new(tiers.finish())),
    ])
    .expect("consistent product columns");
    (
        Catalogue {
            products,
            popular,
            by_brand,
            by_brand_type,
            brands: brand_pick,
            types: type_pick,
        },
        batch,
    )
}

// ---------------------------------------------------------------------------
// Customers, orders and lines of one block

fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn customers_schema() -> SchemaRef {
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    schema(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("first_name", DataType::Utf8, true),
        Field::new("last_name", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("customer_type", DataType::Utf8, true),
        Field::new("gender", DataType::Utf8, true),
        Field::new("birth_date", DataType::Date32, true),
        Field::new("tags", list, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("postal_code", DataType::Utf8, true),
        Field::new("home_store_id", DataType::Int64, true),
        Field::new("loyalty_tier", DataType::Utf8, true),
        Field::new("loyalty_points_lifetime", DataType::Int64, true),
        Field::new("loyalty_points_spendable", DataType::Int64, true),
        Field::new("registered_at", ts_type(), true),
        Field::new("last_contacted_at", ts_type(), true),
        Field::new("med_id_expires_on", DataType::Date32, true),
        Field::new("sms_opt_in", DataType::Boolean, true),
        Field::new("favorite_category", DataType::Utf8, true),
    ])
}

fn orders_schema() -> SchemaRef {
    schema(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, false),
        Field::new("store_id", DataType::Int64, true),
        Field::new("ordered_at", ts_type(), false),
        Field::new("payment_method", DataType::Utf8, true),
        Field::new("offer_code", DataType::Utf8, true),
        Field::new("channel", DataType::Utf8, true),
    ])
}

fn lines_schema() -> SchemaRef {
    schema(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("product_id", DataType::Int64, false),
        Field::new("quantity", DataType::Int64, false),
        Field::new("line_total", DataType::Decimal128(12, 2), true),
    ])
}

/// A bijection on [0, 2^40) that scatters consecutive indexes: sparse,
/// shuffled-looking, unique customer ids.
fn customer_id(i: u64, seed: u64) -> i64 {
    const MASK: u64 = (1 << 40) - 1;
    let a = 0x9E37_79B9_7F4B | 1; // odd: invertible modulo 2^40
    let x = (i
        .wrapping_mul(a)
        .wrapping_add(seed.wrapping_mul(0x2545_F491)))
        & MASK;
    (x ^ (x >> 17)) as i64 + 1_000_000 // xorshift keeps it a bijection on 40 bits
}

struct Block {
    customers: RecordBatch,
    orders: RecordBatch,
    lines: RecordBatch,
}

/// Relative likelihood of an order on `date`: weekends, December, 4/20.
fn season(date: NaiveDate) -> f64 {
    let mut w = match date.weekday() {
        chrono::Weekday::Fri | chrono::Weekday::Sat => 1.4,
        chrono::Weekday::Sun => 1.1,
        _ => 0.9,
    };
    if date.month() == 12 {
        w *= 1.3;
    }
    if date.month() == 4 && date.day() == 20 {
        w *= 4.0;
    }
    w
}

fn micros(dt: chrono::DateTime<chrono::Utc>) -> i64 {
    dt.timestamp_micros()
}

fn generate_block(opts: &GenerateOptions, cat: &Catalogue, block: u64) -> Block {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed.wrapping_mul(0x1000_0001) ^ (block + 1));
    let la = chrono_tz::America::Los_Angeles;
    let end = opts.end_date;
    let start = end - chrono::Duration::days(365 * opts.years as i64);
    let span_days = (end - start).num_days();
    let first = block * BLOCK;
    let n = BLOCK.min(opts.customers - first);
    let orders_per = LogNormal::new(1.55f64, 1.1).expect("valid lognormal");
    let ctype = Weighted::new(CUSTOMER_TYPES.iter().map(|c| c.1));
    let payment = Weighted::new(PAYMENTS.iter().map(|p| p.1));
    let channel = Weighted::new(CHANNELS.iter().map(|c| c.1));
    let store_pick = Weighted::zipf(STORES as usize, 0.8);
    let zips: Vec<String> = (0..200).map(|k| format!("{:05}", 90001 + k * 37)).collect();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
    let day_num = |d: NaiveDate| (d - epoch).num_days() as i32;

    let mut c_id = Int64Builder::new();
    let mut c_first = StringBuilder::new();
    let mut c_last = StringBuilder::new();
    let mut c_email = StringBuilder::new();
    let mut c_type = StringBuilder::new();
    let mut c_gender = StringBuilder::new();
    let mut c_birth = Date32Builder::new();
    let mut c_tags = ListBuilder::new(StringBuilder::new());
    let mut c_country = StringBuilder::new();
    let mut c_postal = StringBuilder::new();
    let mut c_store = Int64Builder::new();
    let mut c_tier = StringBuilder::new();
    let mut c_pts_life = Int64Builder::new();
    let mut c_pts_spend = Int64Builder::new();
    let mut c_reg = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut c_contact = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut c_med = Date32Builder::new();
    let mut c_sms = BooleanBuilder::new();
    let mut c_fav = StringBuilder::new();

    let mut o_id = Int64Builder::new();
    let mut o_cust = Int64Builder::new();
    let mut o_store = Int64Builder::new();
    let mut o_at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut o_pay = StringBuilder::new();
    let mut o_offer = StringBuilder::new();
    let mut o_channel = StringBuilder::new();

    let mut l_order = Int64Builder::new();
    let mut l_product = Int64Builder::new();
    let mut l_qty = Int64Builder::new();
    let mut l_total = Decimal128Builder::new()
        .with_precision_and_scale(12, 2)
        .expect("valid");

    let mut next_order: i64 = (block as i64 + 1) * 1_000_000_000;
    for k in 0..n {
        let i = first + k;
        let id = customer_id(i, opts.seed);
        let fname = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let lname = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        c_id.append_value(id);
        c_first.append_value(fname);
        c_last.append_value(lname);
        c_email
            .append_option((!rng.random_bool(0.03)).then(|| format!("customer{id}@example.com")));
        let t = CUSTOMER_TYPES[ctype.pick(&mut rng)].0;
        c_type.append_value(t);
        let g = rng.random::<f64>();
        c_gender.append_option(if g < 0.45 {
            Some("F")
        } else if g < 0.90 {
            Some("M")
        } else if g < 0.94 {
            Some("X")
        } else {
            None
        });
        // Ages 18-90, skewed young; some born on 29 February; a few unknown.
        let birth = if rng.random_bool(0.03) {
            None
        } else if rng.random_bool(0.004) {
            let leap_years: Vec<i32> = (1940..=2004).filter(|y| y % 4 == 0).collect();
            NaiveDate::from_ymd_opt(leap_years[rng.random_range(0..leap_years.len())], 2, 29)
        } else {
            let age = 18.0 + 72.0 * rng.random::<f64>().powf(1.8);
            Some(end - chrono::Duration::days((age * 365.25) as i64 + rng.random_range(0..365)))
        };
        c_birth.append_option(birth.map(day_num));
        for (tag, p) in CUSTOMER_TAGS {
            if rng.random_bool(p) {
                c_tags.values().append_value(tag);
            }
        }
        c_tags.append(!rng.random_bool(0.02));
        let canada = rng.random_bool(0.08);
        c_country.append_value(if canada { "CA" } else { "US" });
        c_postal.append_value(if canada {
            format!(
                "V{}K {}A{}",
                rng.random_range(1..9),
                rng.random_range(0..9),
                rng.random_range(0..9)
            )
        } else {
            zips[rng.random_range(0..zips.len())].clone()
        });
        let home = store_pick.pick(&mut rng) as i64 + 1;
        c_store.append_value(home);
        // Registration: mostly within the history, some before, some recent.
        let reg_day = if rng.random_bool(0.08) {
            end - chrono::Duration::days(rng.random_range(0..183))
        } else {
            start - chrono::Duration::days(365)
                + chrono::Duration::days(rng.random_range(0..span_days + 365))
        };
        let reg = la
            .from_local_datetime(
                &reg_day
                    .and_hms_opt(rng.random_range(9..21), rng.random_range(0..60), 0)
                    .expect("valid"),
            )
            .earliest()
            .expect("daytime exists")
            .with_timezone(&chrono::Utc);
        c_reg.append_value(micros(reg));
        c_contact.append_option(rng.random_bool(0.7).then(|| {
            micros(
                reg.max(
                    (end - chrono::Duration::days(rng.random_range(0..365)))
                        .and_hms_opt(17, 0, 0)
                        .expect("valid")
                        .and_utc(),
                ),
            )
        }));
        c_med.append_option(
            (t == "Medical" || rng.random_bool(0.01))
                .then(|| day_num(end) + rng.random_range(-365..365)),
        );
        c_sms.append_option((!rng.random_bool(0.05)).then(|| rng.random_bool(0.6)));
        c_fav.append_option(
            rng.random_bool(0.7)
                .then(|| PRODUCT_TYPES[cat.types.pick(&mut rng)].0),
        );

        // Purchases.
        let mut spend_cents: i64 = 0;
        let mut orders_made = 0u32;
        if !rng.random_bool(0.25) {
            let n_orders = (orders_per.sample(&mut rng).ceil() as u32).clamp(1, 600);
            let fav_brand = cat.brands.pick(&mut rng);
            let fav_type = cat.types.pick(&mut rng);
            let fav_pool = cat
                .by_brand_type
                .get(&(fav_brand, fav_type))
                .filter(|v| !v.is_empty())
                .or_else(|| cat.by_brand.get(fav_brand).filter(|v| !v.is_empty()));
            let loyal = rng.random_range(0.2..0.8);
            let active_from = reg_day.max(start);
            // A third of customers churn before the end.
            let active_to = if rng.random_bool(0.3) {
                active_from
                    + chrono::Duration::days(
                        rng.random_range(0..=(end - active_from).num_days().max(0)),
                    )
            } else {
                end
            };
            let active_days = (active_to - active_from).num_days().max(0) + 1;
            for _ in 0..n_orders {
                // Seasonality by rejection sampling.
                let day = loop {
                    let d = active_from + chrono::Duration::days(rng.random_range(0..active_days));
                    if rng.random::<f64>() * 5.2 < season(d) {
                        break d;
                    }
                };
                let (h, m) = if rng.random_bool(0.06) {
                    // Close to local midnight.
                    let mins = rng.random_range(0..60) + 23 * 60 + 30;
                    ((mins / 60) % 24, mins % 60)
                } else {
                    (rng.random_range(9..23), rng.random_range(0..60))
                };
                let local_day = if h == 0 {
                    day + chrono::Duration::days(1)
                } else {
                    day
                };
                if local_day > end {
                    continue;
                }
                let at = la
                    .from_local_datetime(
                        &local_day
                            .and_hms_opt(h, m, rng.random_range(0..60))
                            .expect("valid"),
                    )
                    .earliest()
                    .unwrap_or_else(|| {
                        la.from_utc_datetime(&local_day.and_hms_opt(h, m, 0).expect("valid"))
                    })
                    .with_timezone(&chrono::Utc);
                let order_id = next_order;
                next_order += 1;
                orders_made += 1;
                o_id.append_value(order_id);
                o_cust.append_value(id);
                o_store.append_value(if rng.random_bool(0.7) {
                    home
                } else {
                    store_pick.pick(&mut rng) as i64 + 1
                });
                o_at.append_value(micros(at));
                o_pay.append_value(PAYMENTS[payment.pick(&mut rng)].0);
                o_offer.append_option(
                    rng.random_bool(0.08)
                        .then(|| OFFERS[rng.random_range(0..OFFERS.len())]),
                );
                o_channel.append_value(CHANNELS[channel.pick(&mut rng)].0);
                let n_lines = 1 + (rng.random::<f64>().ln() / 0.6f64.ln()).floor().min(12.0) as u32;
                for _ in 0..n_lines {
                    let p = match fav_pool {
                        Some(pool) if rng.random_bool(loyal) => {
                            pool[rng.random_range(0..pool.len())]
                        }
                        _ => cat.popular.pick(&mut rng),
                    };
                    let prod = &cat.products[p];
                    let qty: i64 = match rng.random::<f64>() {
                        x if x < 0.6 => 1,
                        x if x < 0.8 => 2,
                        x if x < 0.9 => 3,
                        x if x < 0.98 => rng.random_range(4..=6),
                        _ => rng.random_range(7..=20),
                    };
                    let mut total = prod.price_cents * qty;
                    if rng.random_bool(0.1) {
                        total = total * rng.random_range(70..95) / 100;
                    }
                    l_order.append_value(order_id);
                    l_product.append_value(prod.id);
                    l_qty.append_value(qty);
                    if rng.random_bool(0.003) {
                        l_total.append_null();
                    } else {
                        l_total.append_value(total as i128);
                        spend_cents += total;
                    }
                }
            }
        }
        let tier = match spend_cents {
            s if s > 500_000 => TIERS[3],
            s if s > 150_000 => TIERS[2],
            s if s > 40_000 => TIERS[1],
            _ => TIERS[0],
        };
        c_tier.append_value(tier);
        let points = spend_cents / 100 + orders_made as i64 * 5;
        c_pts_life.append_value(points);
        c_pts_spend.append_value(points * rng.random_range(0..100) / 100);
    }

    let customers = RecordBatch::try_new(
        customers_schema(),
        vec![
            Arc::new(c_id.finish()),
            Arc::new(c_first.finish()),
            Arc::new(c_last.finish()),
            Arc::new(c_email.finish()),
            Arc::new(c_type.finish()),
            Arc::new(c_gender.finish()),
            Arc::new(c_birth.finish()),
            Arc::new(c_tags.finish()),
            Arc::new(c_country.finish()),
            Arc::new(c_postal.finish()),
            Arc::new(c_store.finish()),
            Arc::new(c_tier.finish()),
            Arc::new(c_pts_life.finish()),
            Arc::new(c_pts_spend.finish()),
            Arc::new(c_reg.finish()),
            Arc::new(c_contact.finish()),
            Arc::new(c_med.finish()),
            Arc::new(c_sms.finish()),
            Arc::new(c_fav.finish()),
        ],
    )
    .expect("consistent customer columns");
    let orders = RecordBatch::try_new(
        orders_schema(),
        vec![
            Arc::new(o_id.finish()),
            Arc::new(o_cust.finish()),
            Arc::new(o_store.finish()),
            Arc::new(o_at.finish()),
            Arc::new(o_pay.finish()),
            Arc::new(o_offer.finish()),
            Arc::new(o_channel.finish()),
        ],
    )
    .expect("consistent order columns");
    let lines = RecordBatch::try_new(
        lines_schema(),
        vec![
            Arc::new(l_order.finish()),
            Arc::new(l_product.finish()),
            Arc::new(l_qty.finish()),
            Arc::new(l_total.finish()),
        ],
    )
    .expect("consistent line columns");
    Block {
        customers,
        orders,
        lines,
    }
}

// ---------------------------------------------------------------------------
// Writing

struct Out {
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl Out {
    fn create(dir: &Path, name: &str, schema: SchemaRef) -> Result<Self, DatagenError> {
        let path = dir.join(format!("{name}.parquet"));
        let tmp = dir.join(format!(".{name}.parquet.tmp"));
        let err = |e: &dyn std::fmt::Display| DatagenError::Write {
            path: tmp.clone(),
            message: e.to_string(),
        };
        let file = File::create(&tmp).map_err(|e| err(&e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).expect("valid level"),
            ))
            .set_max_row_group_row_count(Some(1 << 20))
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| err(&e))?;
        Ok(Self {
            tmp,
            path,
            writer,
            rows: 0,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), DatagenError> {
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).map_err(|e| DatagenError::Write {
            path: self.tmp.clone(),
            message: e.to_string(),
        })
    }

    /// Closes the file and renames it into place; returns its size.
    fn finish(self) -> Result<u64, DatagenError> {
        let err = |e: &dyn std::fmt::Display| DatagenError::Write {
            path: self.tmp.clone(),
            message: e.to_string(),
        };
        self.writer.close().map_err(|e| err(&e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| err(&e))?;
        Ok(std::fs::metadata(&self.path).map_err(|e| err(&e))?.len())
    }
}

/// Writes customers.parquet, orders.parquet, order_lines.parquet and
/// products.parquet into `out` (each to a temporary name, renamed into place
/// when complete). `progress(done, total)` is told the customers written.
pub fn generate(
    opts: &GenerateOptions,
    out: &Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<GenerateSummary, DatagenError> {
    if opts.customers == 0 {
        return Err(DatagenError::Options(
            "--customers must be at least 1".into(),
        ));
    }
    if opts.years == 0 || opts.years > 100 {
        return Err(DatagenError::Options(
            "--years must be between 1 and 100".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| DatagenError::Write {
        path: out.to_path_buf(),
        message: e.to_string(),
    })?;
    let (cat, products) = catalogue(opts.seed);
    let mut p_out = Out::create(out, "products", products.schema())?;
    p_out.write(&products)?;
    let mut c_out = Out::create(out, "customers", customers_schema())?;
    let mut o_out = Out::create(out, "orders", orders_schema())?;
    let mut l_out = Out::create(out, "order_lines", lines_schema())?;
    let blocks = opts.customers.div_ceil(BLOCK);
    let mut done = 0u64;
    let mut b = 0u64;
    while b < blocks {
        let wave: Vec<u64> = (b..blocks.min(b + WAVE as u64)).collect();
        let made: Vec<Block> = wave
            .par_iter()
            .map(|&k| generate_block(opts, &cat, k))
            .collect();
        for block in made {
            c_out.write(&block.customers)?;
            o_out.write(&block.orders)?;
            l_out.write(&block.lines)?;
            done += block.customers.num_rows() as u64;
            progress(done, opts.customers);
        }
        b += WAVE as u64;
    }
    let summary = GenerateSummary {
        customers: c_out.rows,
        orders: o_out.rows,
        order_lines: l_out.rows,
        products: p_out.rows,
        bytes: 0,
    };
    let bytes = p_out.finish()? + c_out.finish()? + o_out.finish()? + l_out.finish()?;
    Ok(GenerateSummary { bytes, ..summary })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::collections::{HashMap, HashSet};

    fn read(path: &Path) -> Vec<RecordBatch> {
        ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect()
    }

    fn small(seed: u64, dir: &Path) -> GenerateSummary {
        let opts = GenerateOptions {
            customers: 3_000,
            seed,
            ..Default::default()
        };
        generate(&opts, dir, &|_, _| {}).unwrap()
    }

    #[test]
    fn deterministic_for_a_seed() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        small(7, a.path());
        small(7, b.path());
        small(8, c.path());
        for t in ["customers", "orders", "order_lines", "products"] {
            let f = format!("{t}.parquet");
            let x = std::fs::read(a.path().join(&f)).unwrap();
            assert_eq!(
                x,
                std::fs::read(b.path().join(&f)).unwrap(),
                "{t} differs for one seed"
            );
            if t != "products" {
                assert_ne!(
                    x,
                    std::fs::read(c.path().join(&f)).unwrap(),
                    "{t} same for two seeds"
                );
            }
        }
    }

    #[test]
    fn tables_are_consistent_and_realistic() {
        let dir = tempfile::tempdir().unwrap();
        let s = small(3, dir.path());
        assert_eq!(s.customers, 3_000);
        assert!(s.order_lines > 20_000, "{s:?}");
        let customers = read(&dir.path().join("customers.parquet"));
        assert_eq!(customers[0].schema(), customers_schema());
        let mut ids = HashSet::new();
        let mut reg: HashMap<i64, i64> = HashMap::new();
        let mut feb29 = 0;
        let mut null_births = 0;
        for b in &customers {
            let id = b.column(0).as_primitive::<Int64Type>();
            let birth = b.column(6).as_primitive::<arrow_array::types::Date32Type>();
            let r = b.column(14).as_primitive::<TimestampMicrosecondType>();
            for i in 0..b.num_rows() {
                assert!(ids.insert(id.value(i)), "duplicate id");
                reg.insert(id.value(i), r.value(i));
                if birth.is_null(i) {
                    null_births += 1;
                } else {
                    let d = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                        + chrono::Duration::days(birth.value(i) as i64);
                    feb29 += (d.month() == 2 && d.day() == 29) as i32;
                }
            }
        }
        assert!(feb29 > 0 && null_births > 0);
        // Sparse, shuffled ids.
        let sorted: Vec<i64> = {
            let mut v: Vec<i64> = ids.iter().copied().collect();
            v.sort();
            v
        };
        assert!(sorted[sorted.len() - 1] - sorted[0] > 100 * sorted.len() as i64);

        let products = read(&dir.path().join("products.parquet"));
        let pids: HashSet<i64> = products
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        let orders = read(&dir.path().join("orders.parquet"));
        let mut order_ids = HashSet::new();
        let mut buyers = HashSet::new();
        let end = GenerateOptions::default().end_date;
        for b in &orders {
            let oid = b.column(0).as_primitive::<Int64Type>();
            let cid = b.column(1).as_primitive::<Int64Type>();
            let at = b.column(3).as_primitive::<TimestampMicrosecondType>();
            for i in 0..b.num_rows() {
                assert!(order_ids.insert(oid.value(i)));
                let c = cid.value(i);
                assert!(
                    reg[&c] <= at.value(i) + 86_400_000_000,
                    "order before registration"
                );
                let day = chrono::DateTime::from_timestamp_micros(at.value(i))
                    .unwrap()
                    .date_naive();
                assert!(day <= end + chrono::Duration::days(1));
                buyers.insert(c);
            }
        }
        let never = ids.len() - buyers.len();
        assert!(
            never > 300 && never < 1500,
            "{never} customers never ordered"
        );
        let mut null_totals = 0;
        for b in read(&dir.path().join("order_lines.parquet")) {
            let oid = b.column(0).as_primitive::<Int64Type>();
            let pid = b.column(1).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                assert!(order_ids.contains(&oid.value(i)));
                assert!(pids.contains(&pid.value(i)));
            }
            null_totals += b.column(3).null_count();
        }
        assert!(null_totals > 0);
    }
}
