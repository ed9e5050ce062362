package dev.portrait.bench.flink;

/**
 * One input event, as both inputs (canonical NDJSON and the Taobao CSV) map to it.
 * A Flink POJO: public fields and a public no-argument constructor, so Flink's
 * POJO serializer handles it on the heap and in RocksDB.
 */
public class Event {
    public String type;
    /** Event time, epoch ms. */
    public long time;
    public String userId;
    public String shopId;
    public String orderId;
    public String itemId;
    public String categoryId;
    /** NaN when the event has no numeric amount. */
    public double amount = Double.NaN;
    /** -1: absent, 0: false, 1: true. */
    public int success = -1;

    public Event() {}

    /** The value of a string field by its input name (workloads.json names fields as Portrait does). */
    public String field(String name) {
        switch (name) {
            case "user_id": return userId;
            case "shop_id": return shopId;
            case "order_id": return orderId;
            case "item_id": return itemId;
            case "category_id": return categoryId;
            case "type": return type;
            default: throw new IllegalArgumentException("unknown field " + name);
        }
    }

    @Override
    public String toString() {
        return type + "@" + time + "/" + userId;
    }
}
