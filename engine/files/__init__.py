"""Files the artist writes (scenes, patches) -> validated objects, with the value checks
they share."""
