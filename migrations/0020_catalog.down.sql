DROP FUNCTION IF EXISTS catalog_item_json(catalog_items);
DROP FUNCTION IF EXISTS catalog_ts(timestamptz);
DROP TABLE IF EXISTS catalog_items;
