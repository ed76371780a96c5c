"""The domain: value objects, errors and the services that move and process data safely."""
