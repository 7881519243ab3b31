-- A User's hashed_password was copied into audit_logs.changes, where the column grant that hides
-- it from tenants does not reach. The mirror now records a change of it as "changed"; the rows
-- written before are redacted the same way (create, update and delete alike).
UPDATE audit_logs
SET changes = jsonb_set(changes, '{row,hashed_password}', '"changed"')
WHERE changes -> 'row' ? 'hashed_password'
  AND changes -> 'row' -> 'hashed_password' <> '"changed"';
