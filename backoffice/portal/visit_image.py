"""The visit record as a phone-sized picture (Pillow): the park's name, the day, and what the member
did, in the order they did it. A record, not an advert: no slogan, no price list, no QR to a shop;
times and amounts only when the member turned them on."""

from dataclasses import dataclass
from datetime import datetime, timezone, timedelta
import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from protocol.money import format_fen

from .member_reads import Activity

SIZE = (750, 1334)  # a common phone screen in CSS pixels x2: shares full-screen in chat apps
MAX_LINES = 14      # more than this is summarised as "and N more"
# A CJK font the Debian image has (fonts-wqy-microhei); Pillow's own font has no Chinese.
FONT_PATHS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
INK, SOFT, PAPER, RULE = (34, 40, 49), (110, 118, 129), (250, 248, 243), (221, 216, 204)


@dataclass(frozen=True)
class VisitRecord:
    park_name: str
    business_day: str
    member_name: str        # as the member chose to show it ("" for none)
    activities: tuple[Activity, ...]
    show_times: bool
    show_amounts: bool
    utc_offset_minutes: int = 480  # the park's time zone (Asia/Shanghai)

    def clock(self, time_ms: int) -> str:
        zone = timezone(timedelta(minutes=self.utc_offset_minutes))
        return datetime.fromtimestamp(time_ms / 1000, zone).strftime("%H:%M")

    def lines(self) -> list[str]:
        out = []
        for activity in self.activities[:MAX_LINES]:
            parts = [self.clock(activity.time_ms)] if self.show_times else []
            parts.append(activity.station_name)
            if self.show_amounts:
                parts.append(f"¥{format_fen(activity.amount_fen)}")
            out.append("  ".join(parts))
        if len(self.activities) > MAX_LINES:
            out.append(f"… 另有 {len(self.activities) - MAX_LINES} 项 and {len(self.activities) - MAX_LINES} more")
        return out


def _font(size: int):
    for path in FONT_PATHS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def render_png(record: VisitRecord) -> bytes:
    image = Image.new("RGB", SIZE, PAPER)
    draw = ImageDraw.Draw(image)
    width = SIZE[0]
    draw.text((60, 90), record.park_name, font=_font(46), fill=INK)
    draw.text((60, 160), f"{record.business_day}  游园记录 Visit record", font=_font(30), fill=SOFT)
    if record.member_name:
        draw.text((60, 210), record.member_name, font=_font(30), fill=SOFT)
    draw.line((60, 270, width - 60, 270), fill=RULE, width=3)
    y = 310
    lines = record.lines() or ["今天还没有活动记录 No activities recorded yet"]
    for number, text in enumerate(lines, start=1):
        draw.ellipse((60, y + 12, 76, y + 28), fill=INK if number <= MAX_LINES else SOFT)
        draw.text((100, y), text, font=_font(34), fill=INK)
        y += 66
    count = len(record.activities)
    draw.line((60, SIZE[1] - 150, width - 60, SIZE[1] - 150), fill=RULE, width=3)
    draw.text((60, SIZE[1] - 120), f"{count} 项活动 activities · {record.park_name}", font=_font(28), fill=SOFT)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
