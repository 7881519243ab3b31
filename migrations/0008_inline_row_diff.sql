-- The audit diff is now part of each write statement (src/mirror/sql.rs): planned once with the
-- statement instead of running a query of its own per call. Nothing calls the function.
DROP FUNCTION windflow_row_diff(JSONB, JSONB);
