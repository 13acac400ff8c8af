pub mod dns;
pub mod outpost;
