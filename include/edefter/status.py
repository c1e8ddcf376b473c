"""The statuses users see, in Turkish exactly as in the architecture doc."""

from __future__ import annotations

import enum

__all__ = ["BackupStatus", "EDefterStatus"]


class EDefterStatus(enum.Enum):
    """e-Defter statüsü, derived from what the folder holds for a month."""

    DOSYA_OLUSTURULDU = "Dosya Oluşturuldu"  # ledgers present, taxpayer berats missing
    GIBE_GONDERILDI = "GİB'e Gönderildi"  # taxpayer berats present, GİB berats missing
    ONAYLI_BERAT_INDIRILDI = "Onaylı Berat İndirildi"  # GIB-YB and GIB-KB for every part

    @property
    def english(self) -> str:
        return {
            EDefterStatus.DOSYA_OLUSTURULDU: "ledger files created",
            EDefterStatus.GIBE_GONDERILDI: "sent to GİB (awaiting approved berats)",
            EDefterStatus.ONAYLI_BERAT_INDIRILDI: "approved berats downloaded",
        }[self]


class BackupStatus(enum.Enum):
    """Yedekleme durumu, from the pipeline and the integrator."""

    GONDERILMEDI = "Entegratör'e Gönderilmedi"  # nothing uploaded yet
    ISLENDI = "Entegratör'e İşlendi"  # all uploaded, integrator checking
    YEDEKLENDI = "Yedeklendi"  # integrator confirmed every file stored and valid
    YEDEKLENEMEDI = "Yedeklenemedi"  # rejected; reason shown; needs a re-send

    @property
    def english(self) -> str:
        return {
            BackupStatus.GONDERILMEDI: "not sent to the integrator",
            BackupStatus.ISLENDI: "processed by the integrator (checking)",
            BackupStatus.YEDEKLENDI: "backed up",
            BackupStatus.YEDEKLENEMEDI: "backup failed",
        }[self]

    @property
    def is_final(self) -> bool:
        return self in (BackupStatus.YEDEKLENDI, BackupStatus.YEDEKLENEMEDI)
