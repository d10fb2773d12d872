"""The show: the one builder, the event core, decks, frame rendering, the live and
offline drivers."""
