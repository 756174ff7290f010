//! Integration tests of the `pgharbor` binary against real PostgreSQL servers
//! started by `pgharbor-testkit`, one module per capability.

mod backups;
mod chroma;
mod consolidation;
mod deploy;
mod django;
mod docs;
mod faults;
mod harness;
mod health;
mod home_assistant;
mod image;
mod interrupt;
mod into_existing;
mod langflow;
mod leak;
mod memory;
mod n8n;
mod open_webui;
mod open_webui_pgcrypto;
mod open_webui_uploads;
mod pitr;
mod postgres_copy;
mod presets;
mod presets_rules;
mod quoting;
mod real_world;
mod secrets;
mod serving;
mod sqlalchemy;
mod sqlite_errors;
mod sqlite_migrate;
mod sqlite_verify;
mod version;
