//! The central side: scripts/central/schema.sql on a real PostgreSQL, and
//! the mikrotik-central gateway over real HTTP(S).

mod common;

use common::pg::Postgres;

#[test]
fn schema_loads_twice() {
    let pg = Postgres::start();
    pg.load_schema();
    pg.load_schema();
    assert_eq!(pg.psql("SELECT count(*) FROM sites"), "0");
}
