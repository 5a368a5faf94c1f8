DROP TABLE ops_flags;
