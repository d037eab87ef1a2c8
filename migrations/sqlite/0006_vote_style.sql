-- What each vote judged, in the public Chatbot Arena dataset's conv_metadata shape (JSON):
-- both answers' token counts and markdown header, list and bold counts, for style control.
-- Votes cast before this column existed have none and are left out of style control.
ALTER TABLE votes ADD COLUMN conv_metadata TEXT;
