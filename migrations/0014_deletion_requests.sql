-- Who asked to delete each object, as the validating webhook saw the request, keyed by the
-- object's uid: written where no client can write (an annotation could be forged, padded to
-- fail, and bumped the resourceVersion, failing deletes with a precondition). The delete's
-- audit row reads it in the statement that removes the row, and removes it too. Tenants have
-- no grant on it.
CREATE TABLE deletion_requests (
    resource_id UUID PRIMARY KEY,
    actor JSONB NOT NULL,
    requested_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
