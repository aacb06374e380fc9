-- Security review: the check-in NOTIFY fired on every same-day re-submit, and each NOTIFY
-- makes every gateway refresh its check-in map on the door loop. Doors only need to know
-- THAT a person checked in on a day (a fever goes through health_status), so notify only
-- when a (person, day) row is inserted or its day changes.
DROP TRIGGER daily_checkins_notify ON daily_checkins;
CREATE TRIGGER daily_checkins_notify AFTER INSERT ON daily_checkins
    FOR EACH ROW EXECUTE FUNCTION campusgate_notify_checkin();
CREATE TRIGGER daily_checkins_notify_day AFTER UPDATE OF day ON daily_checkins
    FOR EACH ROW WHEN (OLD.day IS DISTINCT FROM NEW.day)
    EXECUTE FUNCTION campusgate_notify_checkin();
