// Chinese first, English available. Every text the console shows goes
// through t(); kinds of events, devices and commands through kindName();
// reasons and health codes from the server through reasonText() and
// healthText(); times through web/src/time.ts (one clock, one format).

import { dataTime, wallAsData } from "./time";
export { setTz } from "./time";

export type Lang = "zh" | "en";

const zh = {
  title: "智路 运行监控台",
  login: "登录",
  logout: "退出",
  username: "用户名",
  password: "密码",
  loginFailed: "登录失败",
  language: "English",
  languageLabel: "切换语言",
  connected: "实时",
  disconnected: "已断开，重连中…",
  degraded: "降级运行",
  dataTime: "数据时间",
  map: "路网地图",
  timespace: "时空图",
  events: "事件",
  proposals: "待审批",
  devices: "设备",
  audit: "审计日志",
  details: "详情",
  noEvents: "当前无活动事件",
  noProposals: "没有待审批的控制建议",
  approve: "批准",
  reject: "驳回",
  edit: "修改",
  reason: "理由",
  reasonRequired: "驳回或修改须填写理由",
  newValue: "新值",
  confirm: "确定",
  cancel: "取消",
  rule: "规则",
  evidence: "依据",
  severity: "等级",
  started: "开始",
  detected: "发现",
  ended: "结束",
  extent: "范围",
  lowestVisibility: "最低能见度",
  surfaceTemp: "路面温度",
  vehicle: "车辆",
  device: "设备",
  kind: "类型",
  command: "指令",
  confirmed: "已确认状态",
  commanded: "下发状态",
  pending: "执行中",
  online: "在线",
  offline: "离线",
  lastContact: "最近通信",
  search: "搜索",
  searchAudit: "搜索审计日志（人员、动作、对象、内容）",
  more: "更多",
  actor: "操作人",
  action: "动作",
  target: "对象",
  time: "时间",
  live: "实时（近3小时）",
  period: "历史时段",
  from: "从",
  hours: "小时",
  show: "显示",
  speed: "速度",
  flow: "流量",
  density: "密度",
  up: "上行",
  down: "下行",
  both: "双向",
  noData: "无数据",
  viewerNote: "只读账户：不能审批",
  createdBy: "提出",
  expires: "到期",
  status: "状态",
  history: "历史",
  // flow (issue 17): severity, event workflow, shift handover
  level_critical: "重大",
  level_major: "较大",
  level_minor: "一般",
  level_info: "提示",
  wfOpen: "未处理",
  wfAcknowledged: "已确认",
  wfClosed: "已关闭",
  ack: "确认",
  ackedBy: "确认人",
  assign: "指派",
  assignTo: "指派给",
  assignedTo: "指派给",
  note: "备注",
  notes: "备注",
  addNote: "添加备注",
  noteRequired: "备注内容不能为空",
  closeEvent: "关闭事件",
  closeReason: "关闭理由",
  closeReasonRequired: "关闭事件须填写理由",
  closedBy: "关闭人",
  stillDetected: "仍在检测中",
  stillDetectedLong: "已关闭；系统仍检测到该事件，措施保持到系统结束该事件，加重时自动重新打开",
  saved: "已保存",
  legalBasis: "法规依据",
  lanesBlocked: "占用车道",
  lane: "车道",
  ch_opened: "发生",
  ch_updated: "变化",
  ch_ended: "结束",
  ch_acknowledged: "确认",
  ch_assigned: "指派",
  ch_note: "备注",
  ch_closed: "关闭",
  ch_reopened: "重新打开",
  w_extent: "范围",
  w_severity: "等级",
  w_band: "能见度等级",
  w_lanes: "车道",
  w_status: "状态",
  handover: "交接班",
  shiftLog: "本班记录",
  sinceStart: "开始运行",
  lastHandover: "上次交接",
  signedBy: "交班人",
  notAcked: "待接班确认",
  ackNote: "接班说明",
  ackHandover: "接班确认",
  handoverNote: "交班说明",
  signHandover: "交班签字",
  signed: "已签字",
  printHandover: "打印",
  openNow: "未结事件",
  pendingNow: "待审批建议",
  eventsOpened: "新发事件",
  eventsEnded: "已结束事件",
  shiftFaults: "故障与报警",
  steps: "处置记录",
  decisions: "审批记录",
  devicesOffline: "离线设备",
  forecast: "预测",
  forecastBand: "预测区间",
  noForecast: "暂无预测",
  station: "检测站",
  segment: "路段",
  track: "轨迹",
  class: "车型",
  heading: "方向角",
  zoomIn: "放大",
  zoomOut: "缩小",
  resetView: "全线",
  mapHelp: "拖动平移，滚轮缩放；键盘：方向键平移，+/− 缩放，Enter 选中最近的对象",
  legendSpeed: "速度 km/h",
  faults: "故障",
  all: "全部",
  decidedBy: "决定人",
  applied: "已下发",
  none: "无",
  posted: "标准限速",
  vehicles: "车辆",
  hazmatOnly: "仅危化品车",
  activeEvents: "活动事件",
  role: "角色",
  error: "错误",
  lagged: "实时数据有丢失，已重新加载",
  alarmUnanswered: "安全提议逾期未处理",
  alarmLevel: "级别",
  plan: "处置预案",
  approveAll: "全部批准",
  planWhatif: "推演此预案",
  escalated: "已升级",
  basis: "依据",
  planSteps: "步骤",
  planReleased: "解除管控",
  notApplied: "未执行",
  noHazmat: "禁危化品",
  whatif: "预案推演（未来 60 分钟）",
  runWhatif: "重新推演",
  whatifRunning: "推演中…",
  whatifFrom: "起点",
  computedIn: "计算用时",
  planDoNothing: "不采取措施",
  planCurrent: "现状",
  planPending: "批准建议后",
  ttt: "总行程时间",
  delayVh: "延误",
  maxQueue: "最长排队",
  clearAt: "排队消散",
  notCleared: "1 小时内不消散",
  fogTooFast: "入雾车速超视距占比",
  turnedAway: "入口劝返车辆",
  whatifEdit: "推演此修改",
  edited: "修改后",
  noDataYet: "无数据（尚无数据时间）",
  badLogin: "用户名或密码错误",
  tooManyLogins: "登录失败次数过多，请稍后再试",
  whatifNote: "“现状”为设备当前确认状态，“批准建议后”为全部待审批建议生效；小字为 10 个需求情景的 10%–90% 区间；模型参数尚未用本路段历史数据标定（docs/TWIN.md）。",
  kpi: "运行指标",
  kpiShow: "展开",
  kpiHide: "收起",
  freeFlow: "畅通",
  travelTime: "行程时间",
  minutes: "分钟",
  delay: "延误",
  section: "路段",
  congestionKm: "拥堵里程 km",
  sevCritical: "重大",
  sevMajor: "较大",
  sevMinor: "一般",
  sevInfo: "提示",
  faulty: "故障",
  unheard: "未接入",
  peak: "峰值",
  layers: "图层",
  layerSegments: "路段车速",
  layerDetectors: "检测站",
  layerSigns: "情报板/限速标志",
  layerEntries: "收费站入口",
  layerWeather: "气象/雾灯/除冰",
  layerVehicles: "车辆",
  layerEvents: "事件",
  symVsl: "可变限速",
  symVms: "情报板",
  symEntry: "入口 开/限流/关",
  symWeather: "气象站",
  symStation: "检测站",
  symVehicle: "车辆",
  symHazmat: "危化品车",
  symEvent: "事件",
  symFog: "雾灯",
  symDeicer: "除冰",
  symTunnel: "隧道",
  symService: "服务区",
} as const;

export type Key = keyof typeof zh;

const en: Record<Key, string> = {
  title: "zhilu Operations Console",
  login: "Log in",
  logout: "Log out",
  username: "User name",
  password: "Password",
  loginFailed: "Login failed",
  language: "中文",
  languageLabel: "Switch language",
  connected: "Live",
  disconnected: "Disconnected, reconnecting…",
  degraded: "Degraded",
  dataTime: "Data time",
  map: "Map",
  timespace: "Time–space",
  events: "Events",
  proposals: "Proposals",
  devices: "Devices",
  audit: "Audit log",
  details: "Details",
  noEvents: "No active events",
  noProposals: "No proposals waiting",
  approve: "Approve",
  reject: "Reject",
  edit: "Edit",
  reason: "Reason",
  reasonRequired: "A reason is required to reject or edit",
  newValue: "New value",
  confirm: "OK",
  cancel: "Cancel",
  rule: "Rule",
  evidence: "Evidence",
  severity: "Severity",
  started: "Started",
  detected: "Detected",
  ended: "Ended",
  extent: "Extent",
  lowestVisibility: "Lowest visibility",
  surfaceTemp: "Surface temperature",
  vehicle: "Vehicle",
  device: "Device",
  kind: "Kind",
  command: "Command",
  confirmed: "Confirmed",
  commanded: "Commanded",
  pending: "Pending",
  online: "Online",
  offline: "Offline",
  lastContact: "Last contact",
  search: "Search",
  searchAudit: "Search the audit log (who, action, target, detail)",
  more: "More",
  actor: "Who",
  action: "Action",
  target: "Target",
  time: "Time",
  live: "Live (last 3 h)",
  period: "Past period",
  from: "From",
  hours: "hours",
  show: "Show",
  speed: "Speed",
  flow: "Flow",
  density: "Density",
  up: "Up",
  down: "Down",
  both: "Both",
  noData: "No data",
  viewerNote: "Read-only account: cannot decide",
  createdBy: "Proposed",
  expires: "Expires",
  status: "Status",
  history: "History",
  // flow (issue 17): severity, event workflow, shift handover
  level_critical: "Critical",
  level_major: "Major",
  level_minor: "Minor",
  level_info: "Info",
  wfOpen: "Open",
  wfAcknowledged: "Acknowledged",
  wfClosed: "Closed",
  ack: "Acknowledge",
  ackedBy: "Acknowledged by",
  assign: "Assign",
  assignTo: "Assign to",
  assignedTo: "Assigned to",
  note: "Note",
  notes: "Notes",
  addNote: "Add note",
  noteRequired: "A note needs text",
  closeEvent: "Close event",
  closeReason: "Reason to close",
  closeReasonRequired: "A reason is required to close an event",
  closedBy: "Closed by",
  stillDetected: "still detected",
  stillDetectedLong: "Closed; the event is still detected: its measures stay until it ends, and it reopens if it gets worse",
  saved: "Saved",
  legalBasis: "Legal basis",
  lanesBlocked: "Lanes blocked",
  lane: "lane",
  ch_opened: "opened",
  ch_updated: "changed",
  ch_ended: "ended",
  ch_acknowledged: "acknowledged",
  ch_assigned: "assigned",
  ch_note: "note",
  ch_closed: "closed",
  ch_reopened: "reopened",
  w_extent: "extent",
  w_severity: "severity",
  w_band: "visibility band",
  w_lanes: "lanes",
  w_status: "status",
  handover: "Handover",
  shiftLog: "Shift log",
  sinceStart: "start of operation",
  lastHandover: "Last handover",
  signedBy: "Signed by",
  notAcked: "awaiting acknowledgement",
  ackNote: "Incoming note",
  ackHandover: "Acknowledge handover",
  handoverNote: "Handover note",
  signHandover: "Sign handover",
  signed: "Signed",
  printHandover: "Print",
  openNow: "Open events",
  pendingNow: "Pending proposals",
  eventsOpened: "Events opened",
  eventsEnded: "Events ended",
  shiftFaults: "Faults and alarms",
  steps: "Operators' steps",
  decisions: "Decisions",
  devicesOffline: "Devices offline",
  forecast: "Forecast",
  forecastBand: "Forecast band",
  noForecast: "No forecast yet",
  station: "Station",
  segment: "Segment",
  track: "Track",
  class: "Class",
  heading: "Heading",
  zoomIn: "Zoom in",
  zoomOut: "Zoom out",
  resetView: "Whole corridor",
  mapHelp: "Drag to pan, wheel to zoom; keys: arrows pan, +/− zoom, Enter picks the nearest item",
  legendSpeed: "Speed km/h",
  faults: "Faults",
  all: "All",
  decidedBy: "Decided by",
  applied: "Applied",
  none: "none",
  posted: "posted limit",
  vehicles: "Vehicles",
  hazmatOnly: "Hazmat only",
  activeEvents: "Active events",
  role: "Role",
  error: "Error",
  lagged: "Live data was lost; reloaded",
  alarmUnanswered: "Safety proposal unanswered",
  alarmLevel: "level",
  plan: "response plan",
  approveAll: "Approve all",
  planWhatif: "What-if of this plan",
  escalated: "escalated",
  basis: "Legal basis",
  planSteps: "steps",
  planReleased: "Release",
  notApplied: "not applied",
  noHazmat: "no hazmat",
  whatif: "What-if (next 60 min)",
  runWhatif: "Run again",
  whatifRunning: "Running…",
  whatifFrom: "From",
  computedIn: "computed in",
  planDoNothing: "Do nothing",
  planCurrent: "As now",
  planPending: "Proposals approved",
  ttt: "Total travel time",
  delayVh: "Delay",
  maxQueue: "Longest queue",
  clearAt: "Queue clears",
  notCleared: "not within the hour",
  fogTooFast: "Into fog faster than sight distance",
  turnedAway: "Turned away at entries",
  whatifEdit: "What-if with this edit",
  edited: "as edited",
  noDataYet: "No data yet",
  badLogin: "Wrong user name or password",
  tooManyLogins: "Too many failed logins; try again later",
  whatifNote: "“As now”: the devices as confirmed; “Proposals approved”: every pending proposal applied. Small print: 10th–90th percentile over 10 demand members; the model's parameters are not yet calibrated on this corridor (docs/TWIN.md).",
  kpi: "Key figures",
  kpiShow: "Show",
  kpiHide: "Hide",
  freeFlow: "free flow",
  travelTime: "Travel time",
  minutes: "min",
  delay: "delay",
  section: "Section",
  congestionKm: "Congestion km",
  sevCritical: "Critical",
  sevMajor: "Major",
  sevMinor: "Minor",
  sevInfo: "Info",
  faulty: "Faulty",
  unheard: "Not connected",
  peak: "peak",
  layers: "Layers",
  layerSegments: "Segment speeds",
  layerDetectors: "Detector stations",
  layerSigns: "Signs (VSL, VMS)",
  layerEntries: "Toll entries",
  layerWeather: "Weather, fog lights, de-icers",
  layerVehicles: "Vehicles",
  layerEvents: "Events",
  symVsl: "Speed-limit sign",
  symVms: "Message sign",
  symEntry: "Entry open/metered/closed",
  symWeather: "Weather station",
  symStation: "Detector station",
  symVehicle: "Vehicle",
  symHazmat: "Hazmat truck",
  symEvent: "Event",
  symFog: "Fog lights",
  symDeicer: "De-icer",
  symTunnel: "Tunnel",
  symService: "Service area",
};

const kindsZh: Record<string, string> = {
  incident: "交通事故",
  congestion: "拥堵",
  fog: "团雾",
  ice: "路面结冰",
  hazmat_speeding: "危化品车超速",
  hazmat_stopped: "危化品车违停",
  hazmat_restricted_zone: "危化品车驶入禁行隧道",
  hazmat_driving_time: "危化品车疲劳驾驶",
  wrong_way: "逆行",
  detector_fault: "检测器故障",
  terminal_alarm: "车载终端报警",
  tunnel_emergency: "隧道紧急事件",
  device_out_of_plan: "设备状态偏离预案",
  source_clock: "数据源时钟异常",
  speed_limit: "可变限速",
  message: "情报板",
  fog_lights: "雾灯",
  entry: "收费站入口",
  deicing: "除冰喷淋",
  tunnel_plan: "隧道预案",
  lane_control: "车道控制",
  detector: "检测站",
  weather: "气象站",
  vsl: "限速标志",
  vms: "情报板",
  deicer: "除冰设施",
  interchange: "互通/收费站",
  tunnel: "隧道",
  service_area: "服务区",
  hazmat: "危化品车",
  truck: "货车",
  bus: "客车",
  car: "小客车",
  open: "开放",
  metered: "限流",
  closed: "关闭",
  on: "开",
  off: "关",
  guidance: "诱导",
  tail_marking: "尾迹警示",
  warning_flash: "警示闪烁",
  pending_s: "待审批",
  pending: "待审批",
  partial: "部分批准",
  closed_plan: "已关闭",
  approved: "已批准",
  edited: "已修改",
  rejected: "已驳回",
  expired: "已过期",
  superseded: "已被取代",
  viewer: "查看员",
  operator: "值班员",
  admin: "管理员",
  // event history (变化)
  "change.opened": "发生",
  "change.updated": "更新",
  "change.ended": "结束",
  // how an action was applied
  "mode.auto": "自动下发",
  "mode.confirm": "经审批",
  "mode.approved": "经批准",
  "mode.edited": "经修改",
  // audit actions (审计)
  login: "登录",
  "login.failed": "登录失败",
  logout: "退出",
  "action.auto": "自动下发指令",
  "action.reconcile": "设备状态校正",
  "proposal.created": "提出控制建议",
  "proposal.approve": "批准建议",
  "proposal.reject": "驳回建议",
  "proposal.edit": "修改建议",
  "proposal.expired": "建议逾期",
  "proposal.escalated": "建议逾期升级",
  "proposal.superseded": "建议被取代",
  "device.failed": "设备执行失败",
  "device.expired": "设备指令超时",
  "device.offline": "设备离线",
  "user.add": "新增账户",
  "user.change": "修改账户",
  "user.disable": "停用账户",
  "actor.system": "系统",
  "actor.cli": "命令行",
  fire: "火灾",
  // forecast methods
  "method.model": "预测模型",
  "method.profile": "时段曲线",
  "method.persistence": "持续法",
};

const kindsEn: Record<string, string> = {
  incident: "Incident",
  congestion: "Congestion",
  fog: "Fog",
  ice: "Ice",
  hazmat_speeding: "Hazmat speeding",
  hazmat_stopped: "Hazmat stopped",
  hazmat_restricted_zone: "Hazmat in closed tunnel",
  hazmat_driving_time: "Hazmat driving time",
  wrong_way: "Wrong-way driver",
  detector_fault: "Detector fault",
  terminal_alarm: "Terminal alarm",
  tunnel_emergency: "Tunnel emergency",
  device_out_of_plan: "Device out of plan",
  source_clock: "Source clock off",
  speed_limit: "Speed limit",
  message: "Message sign",
  fog_lights: "Fog lights",
  entry: "Toll entry",
  deicing: "De-icing",
  tunnel_plan: "Tunnel plan",
  lane_control: "Lane control",
  detector: "Detector station",
  weather: "Weather station",
  vsl: "Speed-limit sign",
  vms: "Message sign",
  deicer: "De-icer",
  interchange: "Interchange",
  tunnel: "Tunnel",
  service_area: "Service area",
  hazmat: "Hazmat truck",
  truck: "Truck",
  bus: "Bus",
  car: "Car",
  open: "open",
  metered: "metered",
  closed: "closed",
  on: "on",
  off: "off",
  guidance: "guidance",
  tail_marking: "tail marking",
  warning_flash: "warning flash",
  pending_s: "pending",
  pending: "pending",
  partial: "partly approved",
  closed_plan: "closed",
  approved: "approved",
  edited: "edited",
  rejected: "rejected",
  expired: "expired",
  superseded: "superseded",
  viewer: "viewer",
  operator: "operator",
  admin: "admin",
  "change.opened": "opened",
  "change.updated": "updated",
  "change.ended": "ended",
  "mode.auto": "applied automatically",
  "mode.confirm": "after approval",
  "mode.approved": "approved",
  "mode.edited": "edited",
  login: "log in",
  "login.failed": "failed log-in",
  logout: "log out",
  "action.auto": "automatic command",
  "action.reconcile": "device state reconciled",
  "proposal.created": "proposal made",
  "proposal.approve": "proposal approved",
  "proposal.reject": "proposal rejected",
  "proposal.edit": "proposal edited",
  "proposal.expired": "proposal expired",
  "proposal.escalated": "proposal escalated",
  "proposal.superseded": "proposal superseded",
  "device.failed": "device failed",
  "device.expired": "device command timed out",
  "device.offline": "device offline",
  "user.add": "account added",
  "user.change": "account changed",
  "user.disable": "account disabled",
  "actor.system": "system",
  "actor.cli": "command line",
  fire: "Fire",
  "method.model": "model",
  "method.profile": "time-of-day profile",
  "method.persistence": "persistence",
};

let lang: Lang = (localStorage.getItem("zhilu.lang") as Lang) === "en" ? "en" : "zh";

export function getLang(): Lang {
  return lang;
}

export function setLang(l: Lang): void {
  lang = l;
  localStorage.setItem("zhilu.lang", l);
  document.documentElement.lang = l === "zh" ? "zh-CN" : "en";
  document.title = t("title");
}

export function t(k: Key): string {
  return lang === "zh" ? zh[k] : en[k];
}

/** A kind, state or role from the API, in the current language. */
export function kindName(k: string | null | undefined): string {
  if (k == null) return "—";
  const d = lang === "zh" ? kindsZh : kindsEn;
  return d[k] ?? k;
}

/** A stake in the K12+345 form. */
export function stake(m: number | null | undefined): string {
  if (m == null || !Number.isFinite(m)) return "—";
  const km = Math.floor(m / 1000);
  const r = Math.round(m - km * 1000);
  return `K${km}+${String(r).padStart(3, "0")}`;
}

/** Data time in the one format (`2026-12-08 07:25:40`, web/src/time.ts);
 * `withDate` is kept for callers: the date is always written. */
export function clock(ms: number | null | undefined, _withDate = true): string {
  return dataTime(ms);
}

/** A server wall-clock stamp, shown in data time in the one format. */
export function wall(ms: number | null | undefined): string {
  return wallAsData(ms);
}

export function dirName(d: string | null | undefined): string {
  if (d === "up") return t("up");
  if (d === "down") return t("down");
  if (d === "both") return t("both");
  return d ?? "—";
}

// ------------------------------------------------------------ reasons

/** A reason as the server sends it beside the text (`reason_code`,
 * zhilu_contract::Reason). */
export interface ReasonCode {
  code: string;
  band?: number;
  visibility_m?: number;
  surface_temp_c?: number;
  stations?: string[];
  profile?: string;
  basis?: string;
  from_m?: number;
  to_m?: number;
  rule?: string;
  tunnel?: string;
  fire?: boolean;
  jiangsu?: boolean;
  taper?: boolean;
}

const basisZh: Record<string, string> = {
  art81_200: "《道路交通安全法实施条例》第八十一条：能见度小于200米，车速不超过60 km/h，车距100米以上",
  art81_100: "《道路交通安全法实施条例》第八十一条：能见度小于100米，车速不超过40 km/h，车距50米以上",
  art81_50: "《道路交通安全法实施条例》第八十一条：能见度小于50米，车速不超过20 km/h，从最近出口驶离",
  fog_practice_500: "能见度小于500米：限速80 km/h、车距150米（通行做法）",
  deicing_practice: "路面温度不高于冰点+1 °C且潮湿时预防性喷洒（通行做法）",
};
const basisEn: Record<string, string> = {
  art81_200: "Road Traffic Safety Law Regulations, Art. 81: visibility under 200 m, at most 60 km/h, 100 m gap",
  art81_100: "Road Traffic Safety Law Regulations, Art. 81: visibility under 100 m, at most 40 km/h, 50 m gap",
  art81_50: "Road Traffic Safety Law Regulations, Art. 81: visibility under 50 m, at most 20 km/h, leave at the next exit",
  fog_practice_500: "visibility under 500 m: 80 km/h, 150 m gap (common practice)",
  deicing_practice: "surface at or below freezing + 1 °C and wet: spray ahead (common practice)",
};

/** The legal basis of a reason code in the console's language. */
export function basisText(b: string | null | undefined): string {
  if (!b) return "—";
  return (lang === "zh" ? basisZh : basisEn)[b] ?? b;
}

function extentText(r: ReasonCode): string {
  if (r.from_m == null) return "";
  const a = Math.min(r.from_m, r.to_m ?? r.from_m);
  const b = Math.max(r.from_m, r.to_m ?? r.from_m);
  return b - a > 1 ? `${stake(a)} – ${stake(b)}` : stake(a);
}

/** A reason in the console's language: from its code when the server
 * sent one, else the text as it is. */
export function reasonText(code: ReasonCode | null | undefined, text?: string | null): string {
  if (!code || !code.code) return text ?? "—";
  const zhL = lang === "zh";
  const st = code.stations?.length ? (zhL ? `（${code.stations.join("、")}）` : ` (${code.stations.join(", ")})`) : "";
  const basis = code.basis ? (zhL ? ` · 依据：${basisText(code.basis)}` : ` · basis: ${basisText(code.basis)}`) : "";
  const rule = code.rule ? (zhL ? `（规则 ${code.rule}）` : ` (rule ${code.rule})`) : "";
  let s: string;
  switch (code.code) {
    case "fog_band":
      s = zhL
        ? `团雾${code.band}级：能见度 ${Math.round(code.visibility_m ?? 0)} m${st}${basis}`
        : `Fog band ${code.band}: visibility ${Math.round(code.visibility_m ?? 0)} m${st}${basis}`;
      break;
    case "ice_risk":
    case "ice_observed": {
      const what = code.code === "ice_risk" ? (zhL ? "路面结冰风险" : "Ice risk") : zhL ? "路面结冰" : "Ice on the road";
      const js = code.jiangsu ? (zhL ? " · 江苏方案：部分路段结冰，限速 40 km/h" : " · Jiangsu scheme: partial icing, 40 km/h") : "";
      s = zhL
        ? `${what}：路面温度 ${code.surface_temp_c} °C${st}${basis}${js}`
        : `${what}: surface ${code.surface_temp_c} °C${st}${basis}${js}`;
      break;
    }
    case "congestion":
      s = zhL ? `拥堵：${extentText(code)}（前方拥堵预警）` : `Congestion: ${extentText(code)} (queue warning)`;
      break;
    case "incident":
      s = zhL
        ? `交通事件：${extentText(code)}${rule} · 上游限速渐变、情报板预警`
        : `Incident: ${extentText(code)}${rule} · speed steps upstream, queue warnings`;
      break;
    case "tunnel":
      s = zhL
        ? `隧道 ${code.tunnel}：${code.fire ? "火灾/烟雾" : "交通事件"}${rule} · 隧道应急预案`
        : `Tunnel ${code.tunnel}: ${code.fire ? "fire or smoke" : "incident"}${rule} · tunnel emergency plan`;
      break;
    case "released":
      s = zhL ? "解除：已无预案需要此设备" : "Released: no plan asks for this device any more";
      break;
    case "reconcile":
      s = zhL ? "校正：设备状态与预案不符，重新下发" : "Reconcile: the device showed other than its plan; commanded again";
      break;
    default:
      return text ?? code.code;
  }
  if (code.taper) s += zhL ? " · 上游渐变限速（每块标志降幅不超过 20 km/h）" : " · approach taper (at most 20 km/h less per sign)";
  return s;
}

/** One of `/api/health`'s codes in the console's language. */
export function healthText(c: { code: string; [k: string]: unknown }): string {
  const zhL = lang === "zh";
  switch (c.code) {
    case "ticks_stalled":
      return zhL ? `数据处理停滞：${c.seconds} 秒未完成周期` : `ticks stalled: none closed for ${c.seconds} s`;
    case "commits_failing":
      return zhL ? "存储写入失败" : "storage: commits failing";
    case "ticks_waiting":
      return zhL ? `存储：${c.rows} 行待写入` : `storage: ${c.rows} rows waiting to be written`;
    case "history_dropped":
      return zhL ? `存储：已丢弃 ${c.rows} 行未写入的历史` : `storage: ${c.rows} rows of unwritten history dropped`;
    case "disk_low":
      return zhL ? `磁盘空间不足：剩余 ${c.free_mb} MB（低于 ${c.min_mb} MB 停止接收）` : `disk low: ${c.free_mb} MB free (ingest stops below ${c.min_mb} MB)`;
    case "broker_down":
      return zhL ? "设备消息服务器不可达" : "device broker unreachable";
    case "source_clocks_off":
      return zhL ? `数据源时钟异常：${(c.sources as string[] | undefined)?.join("、") ?? ""}` : `source clocks off: ${(c.sources as string[] | undefined)?.join(", ") ?? ""}`;
    default:
      return c.code;
  }
}
