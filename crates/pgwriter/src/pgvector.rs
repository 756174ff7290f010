//! pgvector on the target: making sure the extension is there (or saying how to
//! get it), which vector type a dimension needs, and vector index DDL.

use crate::encode::write_vector;
use crate::error::{WriteError, WriteErrorKind};
use bytes::BytesMut;
use pgharbor_core::schema::{quote_ident, PgType, QualifiedName};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Client;

/// Largest dimension pgvector indexes accept for `vector` columns.
pub const VECTOR_INDEX_MAX_DIM: u32 = 2000;
/// Largest dimension pgvector indexes accept for `halfvec` columns.
pub const HALFVEC_INDEX_MAX_DIM: u32 = 4000;
/// Largest dimension of either type.
pub const MAX_DIM: u32 = 16000;

/// A pgvector version, `(major, minor, patch)`.
pub type Version = (u32, u32, u32);

/// The first pgvector release with `halfvec`.
pub const HALFVEC_SINCE: Version = (0, 7, 0);

/// How vectors are compared: Chroma's spaces and pgvector's operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distance {
    /// Euclidean (`<->`, `*_l2_ops`).
    L2,
    /// Cosine (`<=>`, `*_cosine_ops`).
    Cosine,
    /// Inner product (`<#>`, `*_ip_ops`; pgvector returns its negative).
    InnerProduct,
}

impl Distance {
    /// The ordering operator.
    pub fn operator(self) -> &'static str {
        match self {
            Distance::L2 => "<->",
            Distance::Cosine => "<=>",
            Distance::InnerProduct => "<#>",
        }
    }

    fn opclass_suffix(self) -> &'static str {
        match self {
            Distance::L2 => "l2_ops",
            Distance::Cosine => "cosine_ops",
            Distance::InnerProduct => "ip_ops",
        }
    }
}

/// A vector index access method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMethod {
    /// HNSW with `m` and `ef_construction`.
    Hnsw {
        /// Links per node.
        m: u32,
        /// Candidate list size while building.
        ef_construction: u32,
    },
    /// IVFFlat with `lists` clusters.
    IvfFlat {
        /// Number of lists.
        lists: u32,
    },
}

impl IndexMethod {
    /// The access method's name.
    pub fn name(self) -> &'static str {
        match self {
            IndexMethod::Hnsw { .. } => "hnsw",
            IndexMethod::IvfFlat { .. } => "ivfflat",
        }
    }
}

/// `CREATE INDEX name ON table USING method (column opclass) WITH (…)`.
pub fn vector_index(
    name: &str,
    table: &QualifiedName,
    column: &str,
    column_type: PgType,
    method: IndexMethod,
    distance: Distance,
) -> String {
    let family = match column_type {
        PgType::HalfVec(_) => "halfvec",
        _ => "vector",
    };
    let with = match method {
        IndexMethod::Hnsw { m, ef_construction } => {
            format!("m = {m}, ef_construction = {ef_construction}")
        }
        IndexMethod::IvfFlat { lists } => format!("lists = {lists}"),
    };
    format!(
        "CREATE INDEX {} ON {table} USING {} ({} {family}_{}) WITH ({with})",
        quote_ident(name),
        method.name(),
        quote_ident(column),
        distance.opclass_suffix()
    )
}

/// The column type for vectors of `dim` dimensions: `vector(dim)`, or
/// `halfvec(dim)` when an index is wanted and `vector` indexes cannot hold
/// `dim` dimensions (the rule Open WebUI follows too).
pub fn column_type(dim: u32, indexed: bool, version: Version) -> Result<PgType, WriteError> {
    if dim == 0 || dim > MAX_DIM {
        return Err(WriteError::new(
            WriteErrorKind::Conversion,
            format!("{dim} dimensions: pgvector holds 1 to {MAX_DIM}"),
        ));
    }
    if !indexed || dim <= VECTOR_INDEX_MAX_DIM {
        return Ok(PgType::Vector(dim));
    }
    if dim > HALFVEC_INDEX_MAX_DIM {
        return Err(WriteError::new(
            WriteErrorKind::Conversion,
            format!(
                "{dim} dimensions are beyond what pgvector can index ({VECTOR_INDEX_MAX_DIM} for vector, {HALFVEC_INDEX_MAX_DIM} for halfvec); load without an index (--index none)"
            ),
        ));
    }
    if version < HALFVEC_SINCE {
        return Err(WriteError::new(
            WriteErrorKind::Conversion,
            format!(
                "{dim} dimensions need halfvec to be indexed (vector indexes stop at {VECTOR_INDEX_MAX_DIM}), and the target's pgvector {} predates halfvec (0.7.0): upgrade pgvector (ALTER EXTENSION vector UPDATE after installing a newer build), or load without an index (--index none)",
                show(version)
            ),
        ));
    }
    Ok(PgType::HalfVec(dim))
}

/// A query parameter of type `vector` or `halfvec` (sent in binary,
/// zero-padded to `dim`), so a search's query vector is decoded once rather
/// than cast from text for every row.
#[derive(Debug, Clone, Copy)]
pub struct VectorParam<'a> {
    /// The components.
    pub values: &'a [f32],
    /// The column's dimension.
    pub dim: u32,
}

impl ToSql for VectorParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let mut bytes = Vec::new();
        write_vector(self.values, self.dim, ty.name() == "halfvec", &mut bytes)?;
        out.extend_from_slice(&bytes);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.name(), "vector" | "halfvec")
    }

    to_sql_checked!();
}

/// Make sure the `vector` extension is installed in the target database,
/// creating it when it is available and the user may; returns its version.
pub async fn ensure_extension(client: &Client) -> Result<Version, WriteError> {
    if let Some(version) = installed_version(client).await? {
        return Ok(version);
    }
    let available = client
        .query_opt(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'",
            &[],
        )
        .await
        .map_err(|e| WriteError::from_pg(e, "looking for pgvector on the target"))?;
    if available.is_none() {
        return Err(WriteError::new(
            WriteErrorKind::Database,
            format!("the target server does not have pgvector (the `vector` extension) installed. {HOW_TO_GET_PGVECTOR}"),
        ));
    }
    if let Err(e) = client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
        .await
    {
        let denied = e.code().map(|c| c.code()) == Some("42501");
        let err = WriteError::from_pg(e, "creating the vector extension");
        let said = err.server_message().unwrap_or_default();
        if denied {
            return Err(err.advise(WriteErrorKind::PermissionDenied, "pgvector is available on the server but this user may not create it: run `CREATE EXTENSION vector;` in this database as a superuser or the database owner (managed services: as the admin role, e.g. azure_pg_admin, rds_superuser or cloudsqlsuperuser), then run again"));
        }
        if said.contains("azure.extensions") || said.contains("allow-listed") {
            return Err(err.advise(WriteErrorKind::PermissionDenied, AZURE));
        }
        return Err(err);
    }
    installed_version(client).await?.ok_or_else(|| {
        WriteError::new(
            WriteErrorKind::Database,
            "CREATE EXTENSION vector succeeded but the extension is not listed",
        )
    })
}

const AZURE: &str = "On Azure Database for PostgreSQL, add VECTOR to the server parameter azure.extensions (portal: Server parameters; CLI: az postgres flexible-server parameter set --name azure.extensions --value vector …), then run again";

const HOW_TO_GET_PGVECTOR: &str = "Install it on the server: Debian/Ubuntu with the PGDG repository `apt install postgresql-<major>-pgvector`, Docker image `pgvector/pgvector:pg<major>`, Kubernetes (CloudNativePG) an image with pgvector. Managed services: AWS RDS/Aurora and Google Cloud SQL ship it (CREATE EXTENSION as the admin role); Azure Database for PostgreSQL needs VECTOR in the azure.extensions server parameter first";

async fn installed_version(client: &Client) -> Result<Option<Version>, WriteError> {
    let row = client
        .query_opt(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
            &[],
        )
        .await
        .map_err(|e| WriteError::from_pg(e, "checking for pgvector on the target"))?;
    Ok(row.map(|r| parse_version(r.get(0))))
}

/// `0.6.2` → `(0, 6, 2)`; missing parts are 0.
pub fn parse_version(text: &str) -> Version {
    let mut parts = text.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(0)
    });
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// `(0, 6, 2)` → `0.6.2`.
pub fn show(version: Version) -> String {
    format!("{}.{}.{}", version.0, version.1, version.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_sql_uses_the_operator_class_of_the_space() {
        let table = QualifiedName::new("public", "My Docs");
        let sql = vector_index(
            "ix",
            &table,
            "embedding",
            PgType::Vector(3),
            IndexMethod::Hnsw {
                m: 16,
                ef_construction: 64,
            },
            Distance::InnerProduct,
        );
        assert_eq!(
            sql,
            r#"CREATE INDEX "ix" ON "public"."My Docs" USING hnsw ("embedding" vector_ip_ops) WITH (m = 16, ef_construction = 64)"#
        );
        let sql = vector_index(
            "ix",
            &table,
            "v",
            PgType::HalfVec(3000),
            IndexMethod::IvfFlat { lists: 100 },
            Distance::Cosine,
        );
        assert!(
            sql.ends_with("USING ivfflat (\"v\" halfvec_cosine_ops) WITH (lists = 100)"),
            "{sql}"
        );
    }

    #[test]
    fn dimensions_pick_the_type_or_say_why_not() {
        let new = (0, 8, 0);
        assert_eq!(column_type(384, true, new).unwrap(), PgType::Vector(384));
        assert_eq!(column_type(3072, false, new).unwrap(), PgType::Vector(3072));
        assert_eq!(column_type(3072, true, new).unwrap(), PgType::HalfVec(3072));
        let err = column_type(3072, true, (0, 6, 2)).unwrap_err().to_string();
        assert!(err.contains("0.6.2") && err.contains("halfvec"), "{err}");
        let err = column_type(5000, true, new).unwrap_err().to_string();
        assert!(err.contains("--index none"), "{err}");
        assert!(column_type(16001, false, new).is_err());
        assert_eq!(parse_version("0.7.4"), (0, 7, 4));
        assert_eq!(parse_version("0.8"), (0, 8, 0));
    }
}
